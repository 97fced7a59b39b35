"""Development secrets: generated once into the data directory and reused afterwards."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from pydantic import SecretStr

from assay.core.config_check import MIN_SECRET_BYTES
from assay.settings import SECRET_FIELDS, Settings

SECRETS_DIRNAME = "secrets"


class SecretsStoreError(RuntimeError):
    """A stored secret cannot be trusted; the message says which file and what to do."""


def ensure_data_dir(path: Path) -> Path:
    """Create the data directory readable by its owner only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        msg = (
            f"{path} can be read by other users (mode {mode:04o}); "
            f"restrict it with `chmod 600 {path}`."
        )
        raise SecretsStoreError(msg)
    value = path.read_text(encoding="utf-8").strip()
    if len(value.encode()) < MIN_SECRET_BYTES:
        msg = (
            f"{path} holds {len(value.encode())} bytes, fewer than {MIN_SECRET_BYTES}: it is "
            "damaged. Delete it to generate a new one (what was signed or encrypted with the "
            "old value can then no longer be read)."
        )
        raise SecretsStoreError(msg)
    return value


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_or_create(path: Path) -> str:
    if path.exists():
        return _read(path)
    value = secrets.token_urlsafe(48)
    # Written in full under a private temporary name, then linked into place: the final
    # name never holds a partial value, and link (unlike rename) fails when another
    # process starting at the same time placed its value first; then that one is used.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read(path)
        _sync_directory(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return value


def with_generated_secrets(settings: Settings) -> Settings:
    """Fill in every unset secret from the data directory, generating missing ones.

    Only for development and test: production must be given its secrets. Raises
    SecretsStoreError for a stored secret that is readable by others or too short.
    """
    if settings.is_production:
        return settings
    missing = [name for name in SECRET_FIELDS if getattr(settings, name) is None]
    if not missing:
        return settings
    directory = ensure_data_dir(settings.data_dir) / SECRETS_DIRNAME
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    update = {name: SecretStr(_read_or_create(directory / name)) for name in missing}
    return settings.model_copy(update=update)
