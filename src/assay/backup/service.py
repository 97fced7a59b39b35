"""Taking a backup and restoring one: see the package docstring and docs/operations.md."""

# An operator's command with nothing else on its event loop: reading and writing the
# backup's files in place is simpler than threads and blocks no one.
# ruff: noqa: ASYNC240

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from assay import __version__
from assay.backup.errors import BackupError
from assay.backup.sealing import check_passphrase, seal, unseal
from assay.backup.values import decode, encode
from assay.core.db import create_engine_for
from assay.core.migrations import migration_state, upgrade
from assay.core.secrets_store import SECRETS_DIRNAME, ensure_data_dir
from assay.engine.integrity import is_digest, sha256_digest
from assay.registry.artifact_store import FilesystemArtifactStore
from assay.settings import SECRET_FIELDS, Settings
from assay.tables import Base

FORMAT = "assay-backup/1"
MANIFEST = "manifest.json"
SEALED_SECRETS = "secrets.sealed.json"
_INSERT_BATCH = 500


@dataclass(frozen=True, slots=True)
class Summary:
    path: Path
    revision: str
    tables: dict[str, int]
    artifacts: int
    secrets: bool


@dataclass(slots=True)
class _Writer:
    """Files of a backup being written, with the digest of each."""

    root: Path
    digests: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def open(self, relative: str) -> Iterator[IO[bytes]]:
        path = self.root / relative
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with path.open("xb") as handle:

            class _Hashing:
                def write(self, data: bytes) -> None:
                    digest.update(data)
                    handle.write(data)

            yield _Hashing()  # type: ignore[misc]
            handle.flush()
            os.fsync(handle.fileno())
        path.chmod(0o600)
        self.digests[relative] = digest.hexdigest()


def _artifact_files(settings: Settings) -> list[Path]:
    base = settings.data_dir / "artifacts" / "sha256"
    if not base.is_dir():
        return []
    return sorted(p for p in base.glob("*/*") if p.is_file() and is_digest(p.name))


async def _current_revision(engine: AsyncEngine) -> str:
    state = await migration_state(engine)
    if not state.is_current or len(state.current) != 1:
        msg = (
            f"the database is at revision {', '.join(state.current) or 'none'} but this Assay "
            f"expects {', '.join(state.heads)}: run `assay migrate upgrade` first"
        )
        raise BackupError(msg)
    return state.current[0]


async def _snapshot(conn: AsyncConnection) -> None:
    """Begin the one transaction every table is read in, so the tables agree."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # pysqlite begins no transaction for a SELECT; in WAL mode an explicit one
        # keeps the snapshot of its first read until it ends.
        await conn.exec_driver_sql("BEGIN")
        return
    # PostgreSQL and InnoDB: REPEATABLE READ holds one snapshot for the whole transaction.
    await conn.execution_options(isolation_level="REPEATABLE READ")
    await conn.begin()


async def _dump_table(conn: AsyncConnection, table: Table, writer: _Writer) -> int:
    rows = 0
    order = list(table.primary_key.columns) or list(table.columns)
    types = {column.name: column.type for column in table.columns}
    with writer.open(f"tables/{table.name}.jsonl") as out:
        result = await conn.stream(select(table).order_by(*order))
        async for row in result.mappings():
            line = {name: encode(value, types[name]) for name, value in row.items()}
            out.write(json.dumps(line, separators=(",", ":"), allow_nan=False).encode() + b"\n")
            rows += 1
    return rows


async def take_backup(settings: Settings, destination: Path, *, passphrase: str | None) -> Summary:
    """Write a backup into `destination`, which must not exist yet.

    It is written under a temporary name beside `destination` and renamed into place
    at the end, so a directory with that name is always a complete backup.
    """
    if destination.exists():
        msg = f"{destination} already exists; a backup goes into a new directory"
        raise BackupError(msg)
    if passphrase is not None:
        check_passphrase(passphrase)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        summary = await _write_backup(settings, staging, passphrase)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Summary(
        destination, summary.revision, summary.tables, summary.artifacts, summary.secrets
    )


async def _write_backup(settings: Settings, root: Path, passphrase: str | None) -> Summary:
    writer = _Writer(root)
    engine = create_engine_for(settings)
    tables: dict[str, int] = {}
    try:
        revision = await _current_revision(engine)
        async with engine.connect() as conn:
            await _snapshot(conn)
            for table in Base.metadata.sorted_tables:
                tables[table.name] = await _dump_table(conn, table, writer)
            await conn.rollback()
        dialect = engine.dialect.name
    finally:
        await engine.dispose()
    artifacts = 0
    for path in _artifact_files(settings):
        data = path.read_bytes()
        if sha256_digest(data) != path.name:
            msg = (
                f"the stored artifact {path.name} does not match its digest; run "
                "`assay models verify`, then back up again"
            )
            raise BackupError(msg)
        with writer.open(f"artifacts/{path.name}") as out:
            out.write(data)
        artifacts += 1
    if passphrase is not None:
        values = {name: _secret_value(settings, name) for name in SECRET_FIELDS}
        with writer.open(SEALED_SECRETS) as out:
            out.write(json.dumps(seal(values, passphrase)).encode())
    manifest = {
        "format": FORMAT,
        "assay_version": __version__,
        "created_at": datetime.now(UTC).isoformat(),
        "dialect": dialect,
        "revision": revision,
        "tables": tables,
        "artifacts": artifacts,
        "secrets": passphrase is not None,
        "files": writer.digests,
    }
    manifest_path = root / MANIFEST
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    manifest_path.chmod(0o600)
    root.chmod(0o700)
    return Summary(root, revision, tables, artifacts, passphrase is not None)


def _secret_value(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    if not isinstance(value, SecretStr):
        msg = f"the setting {name} has no value to back up"
        raise BackupError(msg)
    return value.get_secret_value()


# --- restore --------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest, after checking that every file it lists has its digest."""
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        msg = f"{source} is not a backup: it has no {MANIFEST}"
        raise BackupError(msg) from None
    except (OSError, ValueError) as exc:
        msg = f"{source / MANIFEST} cannot be read: {exc}"
        raise BackupError(msg) from None
    if manifest.get("format") != FORMAT:
        msg = f"{source} is a backup of an unknown format {manifest.get('format')!r}"
        raise BackupError(msg)
    for relative, expected in manifest["files"].items():
        path = (source / relative).resolve()
        if source.resolve() not in path.parents:
            msg = f"the manifest names a file outside the backup: {relative}"
            raise BackupError(msg)
        if not path.is_file():
            msg = f"the backup is incomplete: {relative} is missing"
            raise BackupError(msg)
        if _file_digest(path) != expected:
            msg = f"the backup is damaged: {relative} does not match its digest"
            raise BackupError(msg)
    return manifest


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def _prepare_empty_database(engine: AsyncEngine, revision: str) -> None:
    state = await migration_state(engine)
    if not state.current:
        await upgrade(engine, "head")
        state = await migration_state(engine)
    if state.current != (revision,):
        msg = (
            f"the backup is of schema revision {revision}, this Assay's database is at "
            f"{', '.join(state.current)}: restore with the Assay version that took the "
            "backup, then upgrade"
        )
        raise BackupError(msg)
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            if count:
                msg = (
                    f"the database is not empty ({table.name} has {count} rows): restore "
                    "into a new, empty database"
                )
                raise BackupError(msg)


async def _load_table(conn: AsyncConnection, table: Table, path: Path) -> int:
    known = {column.name for column in table.columns}
    rows = 0
    batch: list[dict[str, Any]] = []
    with path.open("rb") as handle:
        for line in handle:
            raw = json.loads(line)
            unknown = set(raw) - known
            if unknown:
                msg = f"{path.name} has columns this schema does not: {sorted(unknown)}"
                raise BackupError(msg)
            batch.append({name: decode(value) for name, value in raw.items()})
            if len(batch) >= _INSERT_BATCH:
                await conn.execute(insert(table), batch)
                rows += len(batch)
                batch = []
    if batch:
        await conn.execute(insert(table), batch)
        rows += len(batch)
    return rows


async def restore_backup(settings: Settings, source: Path, *, passphrase: str | None) -> Summary:
    """Restore `source` into this installation's empty database and data directory.

    Every file's digest is checked and the secrets unsealed before anything is
    written; the rows go in one transaction, so a failure leaves the database empty.
    """
    manifest = read_manifest(source)
    secrets: dict[str, str] | None = None
    if manifest["secrets"] and passphrase is not None:
        secrets = unseal(json.loads((source / SEALED_SECRETS).read_text()), passphrase)
    engine = create_engine_for(settings)
    tables: dict[str, int] = {}
    try:
        await _prepare_empty_database(engine, manifest["revision"])
        store = FilesystemArtifactStore(ensure_data_dir(settings.data_dir) / "artifacts")
        artifacts = 0
        for relative in sorted(manifest["files"]):
            if relative.startswith("artifacts/"):
                data = (source / relative).read_bytes()
                if store.put(data) != relative.removeprefix("artifacts/"):
                    msg = f"the backup's artifact {relative} does not match its name"
                    raise BackupError(msg)
                artifacts += 1
        async with engine.begin() as conn:
            for table in Base.metadata.sorted_tables:
                path = source / "tables" / f"{table.name}.jsonl"
                if table.name not in manifest["tables"]:
                    continue
                tables[table.name] = await _load_table(conn, table, path)
                if tables[table.name] != manifest["tables"][table.name]:
                    msg = f"{table.name}: {tables[table.name]} rows read, the manifest says "
                    raise BackupError(msg + str(manifest["tables"][table.name]))
    finally:
        await engine.dispose()
    if secrets is not None:
        _write_secrets(settings, secrets)
    return Summary(source, manifest["revision"], tables, artifacts, secrets is not None)


def _write_secrets(settings: Settings, secrets: dict[str, str]) -> None:
    directory = ensure_data_dir(settings.data_dir) / SECRETS_DIRNAME
    directory.mkdir(mode=0o700, exist_ok=True)
    for name in SECRET_FIELDS:
        if name not in secrets:
            continue
        target = directory / name
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets[name])
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
