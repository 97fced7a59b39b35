"""The Ed25519 key that signs audit checkpoints, and checking such signatures.

The private key is derived from the installation's encryption secret with a purpose of
its own (as the API-key pepper is), so it lives where every other key lives: in the
environment or the secrets file in production, generated into the data directory in
development. It is never stored in the database the checkpoints protect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from assay.core.crypto import derive_key

SIGNING_PURPOSE = "assay audit checkpoint signing v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the start of its SHA-256."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class CheckpointSigner:
    """Signs checkpoints with this installation's audit key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = public_key_id(self.public)

    @classmethod
    def from_secret(cls, secret: str) -> CheckpointSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(derive_key(secret, SIGNING_PURPOSE)))

    def sign(self, message: bytes) -> str:
        return _b64(self._private.sign(message))

    @property
    def public_pem(self) -> str:
        return public_key_pem(self.public)

    def checker(self) -> SignatureChecker:
        return SignatureChecker([self.public])


class SignatureChecker:
    """Checks checkpoint signatures against the public keys it was given."""

    def __init__(self, keys: list[Ed25519PublicKey]) -> None:
        self._keys = {public_key_id(key): key for key in keys}

    @classmethod
    def from_pem(cls, pem: bytes) -> SignatureChecker:
        """From a PEM public key (as GET /v1/audit/public-key gives it); ValueError if the
        PEM is not a key, TypeError if it is not an Ed25519 one."""
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            msg = "not an Ed25519 public key"
            raise TypeError(msg)
        return cls([key])

    def __call__(self, key_id: str, message: bytes, signature: str) -> str | None:
        key = self._keys.get(key_id)
        if key is None:
            return f"signed by key {key_id}, which is not the audit public key given"
        try:
            key.verify(_unb64(signature), message)
        except (InvalidSignature, binascii.Error, ValueError):
            return "its signature is not valid (forged or altered)"
        return None
