"""Every migration runs up, down and up again on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from assay.app import create_app
from assay.core import migrations
from assay.core.db import Database
from assay.core.migrations import UnmigratedDatabaseError, prepare_database
from assay.settings import Settings
from assay.tables import Base


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _schema_diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_up_down_up_on_every_dialect(
    settings_factory: Callable[..., Settings], any_database_url: str
) -> None:
    database = Database(settings_factory(database_url=any_database_url))
    try:
        await migrations.upgrade(database.engine)
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set(Base.metadata.tables)
            # The models and the migrations describe the same schema.
            assert await conn.run_sync(_schema_diff) == []
        assert (await migrations.migration_state(database.engine)).is_current

        await migrations.downgrade(database.engine, "base")
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        state = await migrations.migration_state(database.engine)
        assert state.current == ()
        assert not state.is_current

        await migrations.upgrade(database.engine)
        assert (await migrations.migration_state(database.engine)).is_current
    finally:
        await database.dispose()


async def test_each_revision_steps_down_and_up_one_at_a_time(
    settings_factory: Callable[..., Settings], any_database_url: str
) -> None:
    database = Database(settings_factory(database_url=any_database_url))
    try:
        revisions = list(reversed(migrations.history()))
        for revision in revisions:
            await migrations.upgrade(database.engine, revision.revision)
            assert (await migrations.migration_state(database.engine)).current == (
                revision.revision,
            )
        for revision in reversed(revisions):
            await migrations.downgrade(database.engine, "-1")
            current = (await migrations.migration_state(database.engine)).current
            assert current == ((revision.down_revision,) if revision.down_revision else ())
    finally:
        await database.dispose()


def test_migration_files_are_date_stamped() -> None:
    names = [p.name for p in (migrations.MIGRATIONS_DIR / "versions").glob("*.py")]
    assert names
    for name in names:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{4}_[a-z0-9_]+\.py", name), name


async def test_production_refuses_an_unmigrated_database(
    settings_factory: Callable[..., Settings], any_database_url: str
) -> None:
    # any_database_url: an empty database (database_url comes already migrated).
    settings = settings_factory(database_url=any_database_url, auto_migrate=False)
    database = Database(settings)
    try:
        with pytest.raises(UnmigratedDatabaseError, match="assay migrate upgrade"):
            await prepare_database(database.engine, settings)
    finally:
        await database.dispose()
    app = create_app(settings)
    with pytest.raises(UnmigratedDatabaseError):
        async with app.router.lifespan_context(app):
            pass


async def test_development_applies_pending_migrations_at_start(
    settings_factory: Callable[..., Settings], any_database_url: str
) -> None:
    # any_database_url: an empty database (database_url comes already migrated).
    settings = settings_factory(database_url=any_database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = await migrations.migration_state(app.state.database.engine)
        assert state.is_current


async def test_the_suites_migrated_databases_match_the_models(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    """database_url copies a migrated template (tests/conftest.py): the copy is the schema."""
    database = Database(settings_factory(database_url=database_url))
    try:
        assert (await migrations.migration_state(database.engine)).is_current
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set(Base.metadata.tables)
            assert await conn.run_sync(_schema_diff) == []
    finally:
        await database.dispose()


async def test_sqlite_runs_in_wal_mode(settings_factory: Callable[..., Settings]) -> None:
    from sqlalchemy import text

    database = Database(settings_factory())
    try:
        async with database.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
    finally:
        await database.dispose()
    assert mode == "wal"
    assert fks == 1
