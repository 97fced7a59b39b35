"""A backup of a working installation restores into a new one, row for row, with its
artifacts verifying and its encrypted data readable; a damaged backup writes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from assay.app import create_app
from assay.audit.service import CLI
from assay.backup.errors import BackupError
from assay.backup.service import restore_backup, take_backup
from assay.backup.values import decode, encode
from assay.cli import app as cli_app
from assay.core.db import create_engine_for
from assay.core.migrations import migration_state
from assay.core.principal import PLATFORM
from assay.core.secrets_store import with_generated_secrets
from assay.core.tenancy import across_tenants
from assay.predictions.models import PredictionRecord
from assay.predictions.records import read_private_inputs
from assay.settings import Settings
from assay.tables import Base
from tests.conftest import make_database_url
from tests.support.engine import artifacts, tiny_data, tiny_logreg, tiny_schema_document
from tests.support.identity import Member, login
from tests.support.models import auth, register_rules_model

__all__ = ["artifacts", "tiny_data", "tiny_logreg"]
PASSPHRASE = "a long passphrase kept apart from the backups"


def _kind(settings: Settings) -> str:
    scheme = settings.effective_database_url.split(":", 1)[0]
    return {"sqlite": "sqlite", "postgresql": "postgresql"}.get(scheme, "mariadb")


@pytest.fixture
async def target(
    settings: Settings, settings_factory: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[Settings]:
    """A new installation of the same kind: its own empty database and data directory,
    and no secrets of its own (development takes them from the data directory)."""
    (tmp_path / "target").mkdir()
    url, drop = await make_database_url(_kind(settings), tmp_path / "target")
    yield settings_factory(
        database_url=url,
        data_dir=tmp_path / "target" / "data",
        token_signing_key=None,
        session_secret=None,
        encryption_key=None,
    )
    if drop is not None:
        await drop()


async def _populate(client: httpx.AsyncClient, token: str, model: bytes, app: FastAPI) -> None:
    assert (await register_rules_model(client, token)).status_code == 201
    scored = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"record": {"amount": 1500.0, "country": "GB", "email": "grace@example.org"}},
        headers=auth(token),
    )
    assert scored.status_code == 200, scored.text
    created = await client.post(
        "/v1/models", json={"name": "lgbm", "kind": "ml"}, headers=auth(token)
    )
    assert created.status_code == 201
    manifest = {"schema": tiny_schema_document(), "spec": {"kind": "ml", "format": "lightgbm"}}
    uploaded = await client.post(
        "/v1/models/lgbm/versions",
        data={"manifest": json.dumps(manifest)},
        files={"artifact": ("model.txt", model, "application/octet-stream")},
        headers=auth(token),
    )
    assert uploaded.status_code == 201, uploaded.text
    await app.state.predictions.recorder.flush()


async def _rows(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            result = await conn.execute(select(table).order_by(*order))
            tables[table.name] = [dict(row) for row in result.mappings()]
    return tables


async def test_a_backup_restores_row_for_row_with_artifacts_and_secrets(
    client: httpx.AsyncClient,
    owner_token: str,
    owner: Member,
    app: FastAPI,
    settings: Settings,
    target: Settings,
    artifacts: dict[str, bytes],
    tmp_path: Path,
) -> None:
    await _populate(client, owner_token, artifacts["lightgbm"], app)
    taken = await take_backup(settings, tmp_path / "backup", passphrase=PASSPHRASE)
    assert taken.artifacts == 1
    assert taken.secrets
    assert taken.tables["prediction_records"] == 1

    restored = await restore_backup(target, tmp_path / "backup", passphrase=PASSPHRASE)
    assert restored.tables == taken.tables

    source_engine, target_engine = create_engine_for(settings), create_engine_for(target)
    try:
        assert await _rows(target_engine) == await _rows(source_engine)
    finally:
        await source_engine.dispose()
        await target_engine.dispose()

    # The new installation works with what was restored: the same people sign in, the
    # artifacts verify, and records sealed with the old encryption key open.
    running = create_app(with_generated_secrets(target))
    async with running.router.lifespan_context(running):
        transport = httpx.ASGITransport(app=running, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            token = (await login(http, owner))["access_token"]
            models = await http.get("/v1/models", headers=auth(token))
            assert sorted(m["name"] for m in models.json()) == ["fraud-rules", "lgbm"]
            predicted = await http.post(
                "/v1/models/fraud-rules/predict",
                json={"record": {"amount": 10.0, "country": "US"}},
                headers=auth(token),
            )
            assert predicted.status_code == 200
        async with running.state.database.sessionmaker() as db:
            checks = await running.state.registry.versions.verify_stored_artifacts(
                db, CLI, PLATFORM
            )
            [record] = (
                await db.execute(
                    across_tenants(select(PredictionRecord), "test: the restored record")
                )
            ).scalars()
        assert [(c.model, c.problem) for c in checks] == [("lgbm", None)]
        private = read_private_inputs(running.state.identity.keyring, record)
        assert private == {"email": "grace@example.org"}


async def test_a_damaged_backup_is_refused_before_anything_is_written(
    client: httpx.AsyncClient,
    owner_token: str,
    app: FastAPI,
    settings: Settings,
    target: Settings,
    artifacts: dict[str, bytes],
    tmp_path: Path,
) -> None:
    await _populate(client, owner_token, artifacts["lightgbm"], app)
    backup = tmp_path / "backup"
    await take_backup(settings, backup, passphrase=PASSPHRASE)
    users = backup / "tables" / "users.jsonl"
    users.write_bytes(users.read_bytes().replace(b"@", b"#", 1))

    with pytest.raises(BackupError, match=r"damaged: tables/users\.jsonl"):
        await restore_backup(target, backup, passphrase=PASSPHRASE)
    engine = create_engine_for(target)
    try:
        assert (await migration_state(engine)).current == ()
    finally:
        await engine.dispose()
    assert not (target.data_dir / "artifacts").exists()


async def test_restore_refuses_a_wrong_passphrase_and_a_database_in_use(
    client: httpx.AsyncClient,
    owner_token: str,
    app: FastAPI,
    settings: Settings,
    target: Settings,
    artifacts: dict[str, bytes],
    tmp_path: Path,
) -> None:
    await _populate(client, owner_token, artifacts["lightgbm"], app)
    backup = tmp_path / "backup"
    await take_backup(settings, backup, passphrase=PASSPHRASE)
    with pytest.raises(BackupError, match="passphrase does not open"):
        await restore_backup(target, backup, passphrase="not the passphrase at all")
    with pytest.raises(BackupError, match="not empty"):
        await restore_backup(settings, backup, passphrase=PASSPHRASE)
    with pytest.raises(BackupError, match="already exists"):
        await take_backup(settings, backup, passphrase=None)
    with pytest.raises(BackupError, match="at least 15 characters"):
        await take_backup(settings, tmp_path / "other", passphrase="short")
    assert not (tmp_path / "other").exists()


def test_values_keep_their_types_and_json_documents_stay_documents() -> None:
    import datetime as dt
    import uuid
    from decimal import Decimal

    from sqlalchemy import JSON, Integer

    when = dt.datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=dt.UTC)
    for value in (b"\x00\xff", when, dt.date(2026, 12, 7), uuid.uuid4(), Decimal("0.1"), 7):
        assert decode(json.loads(json.dumps(encode(value, Integer())))) == value
    sneaky = {"$bytes": "not a tag here"}
    assert decode(json.loads(json.dumps(encode(sneaky, JSON())))) == sneaky


def test_the_cli_backs_up_and_restores_an_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("ASSAY_ENV", "development")
    monkeypatch.setenv("ASSAY_DATA_DIR", str(tmp_path / "one"))
    created = runner.invoke(
        cli_app,
        ["admin", "create", "--email", "ops@example.org", "--org", "acme", "--generate-password"],
    )
    assert created.exit_code == 0, created.output
    taken = runner.invoke(
        cli_app,
        [
            "backup",
            str(tmp_path / "b"),
            "--with-secrets",
            "--passphrase-file",
            str(passphrase_file),
        ],
    )
    assert taken.exit_code == 0, taken.output
    assert "secrets included" in taken.output
    assert " 0 rows" not in taken.output

    monkeypatch.setenv("ASSAY_DATA_DIR", str(tmp_path / "two"))
    restored = runner.invoke(
        cli_app, ["restore", str(tmp_path / "b"), "--passphrase-file", str(passphrase_file)]
    )
    assert restored.exit_code == 0, restored.output
    for name in ("token_signing_key", "session_secret", "encryption_key"):
        one = (tmp_path / "one" / "secrets" / name).read_text()
        assert (tmp_path / "two" / "secrets" / name).read_text() == one
    again = runner.invoke(
        cli_app, ["restore", str(tmp_path / "b"), "--passphrase-file", str(passphrase_file)]
    )
    assert again.exit_code == 1
    assert "not empty" in again.output
