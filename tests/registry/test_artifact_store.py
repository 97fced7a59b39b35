"""The content-addressed artifact store: named by digest, verified at every read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from assay.core.errors import DependencyUnavailable, NotFound
from assay.engine.errors import ArtifactIntegrityError
from assay.engine.integrity import sha256_digest
from assay.registry.artifact_store import FilesystemArtifactStore

DATA = b"tree\nversion=v4\n" + b"x" * 1000


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
