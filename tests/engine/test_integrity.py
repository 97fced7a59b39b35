"""Digests and Ed25519 signatures from trusted publishers."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from assay.engine.errors import ArtifactIntegrityError, UntrustedArtifact
from assay.engine.integrity import (
    TrustedPublisherKey,
    decode_signature,
    encode_signature,
    generate_publisher_key,
    public_key_base64,
    sha256_digest,
    sign_artifact,
    verify_artifact_signature,
    verify_digest,
    verify_signature,
)

DATA = b"tree\nversion=v4\n" + b"x" * 1000


def test_digest_is_sha256_hex() -> None:
    assert sha256_digest(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_verify_digest_refuses_other_bytes() -> None:
    verify_digest(DATA, sha256_digest(DATA))
    with pytest.raises(ArtifactIntegrityError):
        verify_digest(DATA + b"!", sha256_digest(DATA))


def test_signature_round_trip_and_key_formats() -> None:
    private = generate_publisher_key()
    signature = sign_artifact(DATA, private)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for key in (
        TrustedPublisherKey.from_public_key(private.public_key()),
        TrustedPublisherKey.from_pem(pem, "publisher"),
        TrustedPublisherKey.from_base64(public_key_base64(private.public_key())),
    ):
        assert verify_artifact_signature(DATA, signature, [key]).key_id == key.key_id
        assert key.key_id.startswith("ed25519:")
    # The base64 text of a .sig file is accepted as well as the raw bytes.
    text = encode_signature(signature)
    assert decode_signature(text) == signature
    trusted = TrustedPublisherKey.from_public_key(private.public_key())
    assert verify_signature(sha256_digest(DATA), text, [trusted]) == trusted


def test_signature_over_other_bytes_is_refused() -> None:
    private = generate_publisher_key()
    key = TrustedPublisherKey.from_public_key(private.public_key())
    signature = sign_artifact(DATA, private)
    with pytest.raises(UntrustedArtifact):
        verify_artifact_signature(DATA + b"tampered", signature, [key])


def test_signature_from_an_untrusted_key_is_refused() -> None:
    trusted = TrustedPublisherKey.from_public_key(generate_publisher_key().public_key())
    with pytest.raises(UntrustedArtifact):
        verify_artifact_signature(DATA, sign_artifact(DATA, generate_publisher_key()), [trusted])
    with pytest.raises(UntrustedArtifact):
        verify_artifact_signature(DATA, sign_artifact(DATA, generate_publisher_key()), [])


@pytest.mark.parametrize("signature", [b"", b"short", "not base64!", "A" * 200])
def test_malformed_signatures_are_refused(signature: bytes | str) -> None:
    key = TrustedPublisherKey.from_public_key(generate_publisher_key().public_key())
    with pytest.raises(UntrustedArtifact):
        verify_artifact_signature(DATA, signature, [key])


def test_non_ed25519_publisher_keys_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(UntrustedArtifact):
        TrustedPublisherKey.from_pem(pem)
