"""Content-addressed artifact storage: bytes in, SHA-256 digest out; digest in, verified bytes out.

The store never sees a client's file name: an artifact's only name is its digest,
checked against ``^[0-9a-f]{64}$`` before it becomes part of a path. Every read
re-hashes the bytes and raises `ArtifactIntegrityError` on a mismatch, so a file
edited on disk is never loaded. Writes go to a temporary file in the same directory,
are flushed to disk, then renamed into place, so a reader never sees half a file.

The interface is synchronous (file I/O); async callers run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from assay.core.errors import DependencyUnavailable, NotFound
from assay.engine.errors import ArtifactIntegrityError
from assay.engine.integrity import is_digest, sha256_digest, verify_digest

_DIR_MODE = 0o700
_FILE_MODE = 0o600


class ArtifactStore(Protocol):
    """Where artifact bytes live, addressed by their SHA-256."""

    def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its digest."""

    def get(self, digest: str) -> bytes:
        """The bytes with this digest, verified; `NotFound` or `ArtifactIntegrityError`."""

    def exists(self, digest: str) -> bool:
        """Whether bytes with this digest are stored (not verified)."""

    def delete(self, digest: str) -> None:
        """Remove the bytes with this digest, if present."""


def _checked(digest: str) -> str:
    # Anything but a digest (a client's file name, "../x") names no artifact and never
    # becomes part of a path.
    if not isinstance(digest, str) or not is_digest(digest):
        raise NotFound("No artifact with that digest is stored.")
    return digest


def _unavailable(what: str, exc: OSError) -> DependencyUnavailable:
    # The reason (permission denied, disk full) without the path, which is server detail.
    return DependencyUnavailable(
        f"The artifact store cannot be {what}: {exc.strerror or type(exc).__name__}."
    )


class FilesystemArtifactStore:
    """Artifacts as files ``<root>/sha256/<first two hex>/<digest>``, mode 0600."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._base = self.root / "sha256"

    def _path(self, digest: str) -> Path:
        digest = _checked(digest)
        return self._base / digest[:2] / digest

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        path = self._path(digest)
        if path.exists():
            try:
                verify_digest(path.read_bytes(), digest)
            except ArtifactIntegrityError:
                pass  # a damaged copy is replaced by the good bytes below
            else:
                return digest
        try:
            path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=path.parent)
        except OSError as exc:
            raise _unavailable("written", exc) from None
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.chmod(_FILE_MODE)
            tmp.replace(path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _unavailable("written", exc) from None
            raise
        self._sync_dir(path.parent)
        return digest

    @staticmethod
    def _sync_dir(directory: Path) -> None:
        # The rename is durable only once the directory entry is on disk.
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def get(self, digest: str) -> bytes:
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound("No artifact with that digest is stored.") from None
        except OSError as exc:
            raise _unavailable("read", exc) from None
        verify_digest(data, digest)
        return data

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def delete(self, digest: str) -> None:
        self._path(digest).unlink(missing_ok=True)
