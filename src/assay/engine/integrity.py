"""Artifact integrity: SHA-256 digests and detached Ed25519 signatures from trusted publishers.

The digest pins an artifact's exact bytes: it is recorded at registration and checked
at every read (see `assay.registry.artifact_store`). A signature says *who* produced
those bytes: a publisher signs the digest offline with its private key, and Assay
verifies the detached signature against the public keys an operator trusts.

What is signed is ``b"assay-artifact-v1:" + <hex sha-256 digest>``: the prefix keeps
these signatures from being valid for any other protocol that uses the same key, and
signing the digest lets a signature be checked without re-reading a large file.
Signatures travel as 64 raw bytes or their base64 text (a ``.sig`` file).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from assay.engine.errors import ArtifactIntegrityError, UntrustedArtifact

DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SIGNATURE_CONTEXT = b"assay-artifact-v1:"
SIGNATURE_BYTES = 64


def sha256_digest(data: bytes) -> str:
    """Lower-case hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def is_digest(value: str) -> bool:
    return bool(DIGEST_PATTERN.fullmatch(value))


def verify_digest(data: bytes, expected: str) -> None:
    """Raise `ArtifactIntegrityError` unless `data` hashes to `expected`."""
    actual = sha256_digest(data)
    if not hmac.compare_digest(actual, expected.lower()):
        raise ArtifactIntegrityError(
            "The model artifact does not match its recorded digest and was not loaded.",
            extra={"expected_digest": expected.lower()},
        )


@dataclass(frozen=True, slots=True)
class TrustedPublisherKey:
    """A publisher's Ed25519 public key, trusted by the operator, with its fingerprint id."""

    key_id: str
    public_key: Ed25519PublicKey
    name: str | None = None

    @classmethod
    def from_public_key(cls, key: Ed25519PublicKey, name: str | None = None) -> TrustedPublisherKey:
        return cls(public_key_fingerprint(key), key, name)

    @classmethod
    def from_pem(cls, pem: bytes, name: str | None = None) -> TrustedPublisherKey:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise UntrustedArtifact("Publisher keys must be Ed25519 public keys.")
        return cls.from_public_key(key, name)

    @classmethod
    def from_base64(cls, text: str, name: str | None = None) -> TrustedPublisherKey:
        """From the base64 of the 32 raw public-key bytes."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
            key = Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError):
            raise UntrustedArtifact("A publisher key is not a base64 Ed25519 public key.") from None
        return cls.from_public_key(key, name)


def public_key_fingerprint(key: Ed25519PublicKey) -> str:
    """A short stable id for a public key: ``ed25519:`` and 16 hex digits of its SHA-256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def public_key_base64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def generate_publisher_key() -> Ed25519PrivateKey:
    """A new Ed25519 signing key for a publisher (kept by the publisher, never by Assay)."""
    return Ed25519PrivateKey.generate()


def _signed_message(digest: str) -> bytes:
    return SIGNATURE_CONTEXT + digest.lower().encode("ascii")


def sign_artifact(data: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The 64-byte detached signature of `data`, for publishers."""
    return private_key.sign(_signed_message(sha256_digest(data)))


def encode_signature(signature: bytes) -> str:
    return base64.b64encode(signature).decode()


def decode_signature(value: bytes | str) -> bytes:
    """Accept the 64 raw bytes or their base64 text; raise `UntrustedArtifact` otherwise."""
    if isinstance(value, bytes) and len(value) == SIGNATURE_BYTES:
        return value
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SIGNATURE_BYTES:
        raise UntrustedArtifact("The signature is not a 64-byte Ed25519 signature.")
    return raw


def verify_signature(
    digest: str, signature: bytes | str, trusted_keys: Iterable[TrustedPublisherKey]
) -> TrustedPublisherKey:
    """The trusted key that signed `digest`; `UntrustedArtifact` if none did."""
    if not is_digest(digest.lower()):
        raise UntrustedArtifact("Signatures are checked against a SHA-256 hex digest.")
    raw = decode_signature(signature)
    message = _signed_message(digest)
    for key in trusted_keys:
        try:
            key.public_key.verify(raw, message)
        except InvalidSignature:
            continue
        return key
    raise UntrustedArtifact("The artifact's signature does not verify against any trusted key.")


def verify_artifact_signature(
    data: bytes, signature: bytes | str, trusted_keys: Iterable[TrustedPublisherKey]
) -> TrustedPublisherKey:
    """Hash `data` and check its detached signature; returns the signing key."""
    return verify_signature(sha256_digest(data), signature, trusted_keys)
