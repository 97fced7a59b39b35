"""Authenticated encryption (AES-256-GCM) and keyed hashing derived from our secrets.

Ciphertexts carry the id of the key that made them, so keys can rotate: a new key
encrypts, old keys still decrypt. Associated data binds a ciphertext to where it lives
(tenant, table, column), so moving it elsewhere makes it fail to decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12
_KEY_ID_BYTES = 4


class DecryptionError(ValueError):
    """The ciphertext is corrupt, was moved, or its key is unknown."""


def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    """A purpose-bound subkey, so one configured secret never serves two uses."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
        secret.encode()
    )


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:_KEY_ID_BYTES]


class Keyring:
    """The current key encrypts; every key in the ring decrypts."""

    def __init__(self, current: bytes, previous: list[bytes] | None = None) -> None:
        self._current = current
        self._current_id = key_id(current)
        self._by_id = {key_id(k): AESGCM(k) for k in [current, *(previous or [])]}

    @classmethod
    def from_secret(cls, secret: str, previous: list[str] | None = None) -> Keyring:
        return cls(
            derive_key(secret, "assay field encryption v1"),
            [derive_key(p, "assay field encryption v1") for p in previous or []],
        )

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._by_id[self._current_id].encrypt(nonce, plaintext, associated_data)
        return self._current_id + nonce + sealed

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        kid = ciphertext[:_KEY_ID_BYTES]
        nonce = ciphertext[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES]
        aead = self._by_id.get(kid)
        if aead is None:
            msg = "unknown encryption key"
            raise DecryptionError(msg)
        try:
            return aead.decrypt(nonce, ciphertext[_KEY_ID_BYTES + _NONCE_BYTES :], associated_data)
        except InvalidTag as exc:
            msg = "ciphertext failed authentication"
            raise DecryptionError(msg) from exc


def keyed_digest(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def token_digest(token: str) -> str:
    """Lookup digest for high-entropy tokens (>= 128 bits): no key or salt needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def digests_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


def new_opaque_token() -> str:
    """256 bits from the CSPRNG, URL-safe: refresh tokens, emailed links, session cookies."""
    return secrets.token_urlsafe(32)
