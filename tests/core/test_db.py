"""The database layer: what reaches the log when a query fails, and SQLite file modes."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from assay.app import create_app
from assay.core.db import Database, DbSession
from assay.settings import Settings

from ..conftest import new_secret


async def test_a_failing_query_keeps_its_bound_values_out_of_the_error_and_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    secret = new_secret()
    app = create_app(settings)

    @app.get("/probe/failing-query")
    async def failing_query(db: DbSession) -> None:
        statement = text("SELECT * FROM no_such_table WHERE token = :token")
        await db.execute(statement, {"token": secret})

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/probe/failing-query")
        database: Database = app.state.database
        async with database.sessionmaker() as db:
            with pytest.raises(DBAPIError) as raised:
                await db.execute(text("SELECT * FROM no_such_table WHERE x = :x"), {"x": secret})

    assert response.status_code == 500
    assert secret not in response.text
    assert "no_such_table" in str(raised.value)  # the statement itself is still reported
    assert secret not in str(raised.value)
    assert "hide_parameters" in str(raised.value)
    assert "unhandled_exception" in caplog.text
    assert "no_such_table" in caplog.text
    assert secret not in caplog.text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _legacy_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("legacy.db*"))


async def test_sqlite_database_and_its_wal_files_are_private(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    database_path = tmp_path / "data" / "assay.db"
    settings = settings_factory(database_url=None)
    assert settings.effective_database_url.endswith("data/assay.db")
    app = create_app(settings)
    async with app.router.lifespan_context(app):  # migrates: writes through the WAL
        files = [database_path, *(database_path.with_name(f"assay.db-{s}") for s in ("wal", "shm"))]
        assert all(path.exists() for path in files)
        assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}
    assert _mode(tmp_path / "data") == 0o700


async def test_an_existing_world_readable_sqlite_database_is_made_private(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    database_path = tmp_path / "legacy.db"
    settings = settings_factory(database_url=f"sqlite:///{database_path}")
    first = Database(settings)
    await first.ping()
    await first.dispose()
    for path in _legacy_files(tmp_path):
        path.chmod(0o644)

    second = Database(settings)
    try:
        await second.ping()
        assert _mode(database_path) == 0o600
        assert all(_mode(path) == 0o600 for path in _legacy_files(tmp_path))
    finally:
        await second.dispose()
