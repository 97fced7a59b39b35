"""Run the Alembic migrations that ship inside the package, on a live async engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from assay.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
FILE_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s"


@dataclass(frozen=True)
class MigrationState:
    current: tuple[str, ...]
    heads: tuple[str, ...]

    @property
    def is_current(self) -> bool:
        return set(self.current) == set(self.heads)


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revision: str | None
    message: str


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("timezone", "UTC")
    return config


def _with_connection(connection: Connection, action: str, *args: Any) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "revision":
        message, autogenerate = args
        command.revision(config, message=message, autogenerate=autogenerate)
        return
    getattr(command, action)(config, *args)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_with_connection, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_with_connection, "downgrade", revision)


async def autogenerate_revision(engine: AsyncEngine, message: str) -> None:
    """Write a new migration file comparing the models with a database at head."""
    async with engine.begin() as conn:
        await conn.run_sync(_with_connection, "revision", message, True)


def _state(connection: Connection) -> MigrationState:
    current = MigrationContext.configure(connection).get_current_heads()
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return MigrationState(current=tuple(current), heads=tuple(heads))


async def migration_state(engine: AsyncEngine) -> MigrationState:
    async with engine.connect() as conn:
        return await conn.run_sync(_state)


def history() -> list[Revision]:
    """Every shipped revision, newest first."""
    scripts = ScriptDirectory.from_config(alembic_config())
    revisions: list[Revision] = []
    for script in scripts.walk_revisions():
        down = script.down_revision
        revisions.append(
            Revision(
                revision=script.revision,
                down_revision=down if isinstance(down, str) or down is None else ",".join(down),
                message=script.doc or "",
            )
        )
    return revisions


class UnmigratedDatabaseError(RuntimeError):
    """The schema is behind the code and this environment may not migrate it itself."""


async def prepare_database(engine: AsyncEngine, settings: Settings) -> None:
    """Apply pending migrations where allowed; otherwise refuse an out-of-date schema."""
    if settings.effective_auto_migrate:
        await upgrade(engine)
        return
    state = await migration_state(engine)
    if not state.is_current:
        msg = (
            f"The database schema is at {list(state.current) or 'nothing'}, not at "
            f"{list(state.heads)}; run `assay migrate upgrade` first."
        )
        raise UnmigratedDatabaseError(msg)
