"""Authenticated encryption (AES-256-GCM) and keyed hashing derived from our secrets.

Ciphertexts carry the id of the key that made them, so keys can rotate: a new key
encrypts, old keys still decrypt (the lifecycle itself is assay.keys, ADR 0024).
Associated data binds a ciphertext to where it lives (tenant, table, column), so moving
it elsewhere makes it fail to decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

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


def initial_data_key(secret: str) -> bytes:
    """The data key every installation started with: derived from the encryption secret.

    The keyring imports it as its first data key (assay.keys), so what it sealed keeps
    decrypting; keys made by a rotation are random instead.
    """
    return derive_key(secret, "assay field encryption v1")


class UnknownKeyError(DecryptionError):
    """The ciphertext names a data key this process does not hold (retired, or newer than
    this process's view of the keyring)."""

    def __init__(self, kid: bytes) -> None:
        self.key_id = kid.hex()
        super().__init__(f"unknown encryption key {self.key_id}")


def ciphertext_key_id(ciphertext: bytes) -> str:
    """The id (hex) of the data key that sealed `ciphertext`; no key is needed to read it."""
    return ciphertext[:_KEY_ID_BYTES].hex()


def new_data_key() -> bytes:
    """A random 256-bit data key from the CSPRNG."""
    return secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class _Ring:
    current_id: bytes
    by_id: dict[bytes, AESGCM]
    generation: int


class Keyring:
    """The active key encrypts; every key in the ring decrypts.

    The ring's contents can be replaced at any time (`install`, after a rotation): one
    reference is swapped, so a call in flight, on any thread, sees the old ring or the
    new one, never a mix. A decryption that meets an unknown key id marks the ring
    stale, so whoever keeps it up to date looks again at once (assay.keys).
    """

    def __init__(self, current: bytes, previous: list[bytes] | None = None) -> None:
        self.stale = False
        self._ring = _Ring(
            key_id(current), {key_id(k): AESGCM(k) for k in [current, *(previous or [])]}, 0
        )

    @classmethod
    def from_secret(cls, secret: str, previous: list[str] | None = None) -> Keyring:
        return cls(initial_data_key(secret), [initial_data_key(p) for p in previous or []])

    @property
    def active_key_id(self) -> str:
        return self._ring.current_id.hex()

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(kid.hex() for kid in self._ring.by_id)

    @property
    def generation(self) -> int:
        return self._ring.generation

    def install(self, keys: dict[str, bytes], active: str, generation: int) -> None:
        """Replace the ring: `keys` by hex id (the active one among them), all at once."""
        by_id = {bytes.fromhex(kid): AESGCM(material) for kid, material in keys.items()}
        current = bytes.fromhex(active)
        if current not in by_id:
            msg = "the active key is not among the keys"
            raise ValueError(msg)
        self._ring = _Ring(current, by_id, generation)
        self.stale = False

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        ring = self._ring
        nonce = os.urandom(_NONCE_BYTES)
        sealed = ring.by_id[ring.current_id].encrypt(nonce, plaintext, associated_data)
        return ring.current_id + nonce + sealed

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        kid = ciphertext[:_KEY_ID_BYTES]
        nonce = ciphertext[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES]
        aead = self._ring.by_id.get(kid)
        if aead is None:
            self.stale = True
            raise UnknownKeyError(kid)
        try:
            return aead.decrypt(nonce, ciphertext[_KEY_ID_BYTES + _NONCE_BYTES :], associated_data)
        except InvalidTag as exc:
            msg = "ciphertext failed authentication"
            raise DecryptionError(msg) from exc

    def reseal(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        """The same plaintext sealed again under the active key (same associated data)."""
        return self.encrypt(self.decrypt(ciphertext, associated_data), associated_data)


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
