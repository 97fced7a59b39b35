"""Digests, Ed25519 signatures and the content-addressed artifact store."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from assay.core.errors import DependencyUnavailable, NotFound
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
from assay.registry.artifact_store import FilesystemArtifactStore

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


def test_store_round_trip_names_files_by_digest(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path)
    digest = store.put(DATA)
    assert digest == sha256_digest(DATA)
    assert store.put(DATA) == digest  # idempotent
    assert store.get(digest) == DATA
    assert store.exists(digest)
    path = tmp_path / "sha256" / digest[:2] / digest
    assert path.read_bytes() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    leftovers = [p for p in path.parent.iterdir() if p.name != digest]
    assert leftovers == []  # the temporary file was renamed, not copied
    store.delete(digest)
    assert not store.exists(digest)


def test_tampered_artifact_raises_integrity_error(tmp_path: Path) -> None:
    store = FilesystemArtifactStore(tmp_path)
    digest = store.put(DATA)
    path = tmp_path / "sha256" / digest[:2] / digest
    path.write_bytes(DATA.replace(b"x", b"y", 1))
    with pytest.raises(ArtifactIntegrityError):
        store.get(digest)
    # Uploading the genuine bytes again repairs the copy.
    assert store.put(DATA) == digest
    assert store.get(digest) == DATA


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "model.onnx", "A" * 64, "0" * 63, "/" + "0" * 63, "0" * 64 + "/.."]
)
def test_names_that_are_not_digests_never_become_paths(tmp_path: Path, name: str) -> None:
    store = FilesystemArtifactStore(tmp_path / "store")
    with pytest.raises(NotFound):
        store.get(name)
    with pytest.raises(NotFound):
        store.exists(name)
    with pytest.raises(NotFound):
        store.delete(name)
    assert not (tmp_path / "store").exists()


def test_missing_artifact_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        FilesystemArtifactStore(tmp_path).get("0" * 64)


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FilesystemArtifactStore(tmp_path)

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    # Reported as the store being unavailable (a 503 problem), never a stack trace.
    with pytest.raises(DependencyUnavailable, match="cannot be written"):
        store.put(DATA)
    monkeypatch.undo()
    digest = sha256_digest(DATA)
    assert not store.exists(digest)
    assert list((tmp_path / "sha256" / digest[:2]).iterdir()) == []
