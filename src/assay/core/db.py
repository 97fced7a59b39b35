"""Async database access for SQLite, PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from assay.core.errors import AssayError
from assay.settings import Settings

# One naming convention, so migrations name constraints identically on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}


def async_database_url(raw: str) -> URL:
    """Map a plain URL (postgresql://, mariadb://, ...) onto the async driver we ship."""
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        msg = f"unsupported database {backend!r}; use sqlite, postgresql, mysql or mariadb"
        raise ValueError(msg)
    return url.set(drivername=_ASYNC_DRIVERS[backend])


def _enable_sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does, and tighten older files.

    SQLite would create it with the umask (usually 0644) and gives its -wal and -shm
    files the database file's mode, so creating this one file private covers all three.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except FileNotFoundError:
        return  # no such directory: SQLite reports it when it tries to open the file
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            candidate.chmod(mode & 0o700)


def _private_file_before_connect(path: Path) -> Callable[..., None]:
    def before_connect(*_: Any) -> None:
        make_private_sqlite_file(path)

    return before_connect


def create_engine_for(settings: Settings) -> AsyncEngine:
    url = async_database_url(settings.effective_database_url)
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": settings.db_connect_timeout_seconds}
    else:
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            pool_recycle=settings.db_pool_recycle_seconds,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
        if backend == "postgresql":
            kwargs["connect_args"] = {
                "timeout": settings.db_connect_timeout_seconds,
                "server_settings": {"application_name": settings.db_application_name},
            }
        else:
            kwargs["connect_args"] = {"connect_timeout": settings.db_connect_timeout_seconds}
    # Bound values (emails, hashes, tokens) never reach exception messages, hence
    # never the log or the error tracker.
    engine = create_async_engine(url, hide_parameters=True, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _enable_sqlite_pragmas)
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            event.listen(
                engine.sync_engine, "do_connect", _private_file_before_connect(Path(url.database))
            )
    return engine


class Database:
    """The engine and session factory of one application instance."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine_for(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: commit when the handler returns, else roll back."""
    database: Database = request.app.state.database
    session = database.sessionmaker()
    try:
        yield session
    except AssayError as exc:
        if exc.keeps_writes:
            await session.commit()
        else:
            await session.rollback()
        raise
    except BaseException:
        await session.rollback()
        raise
    else:
        # Without a transaction nothing was read or written: nothing to commit.
        if session.in_transaction():
            await session.commit()
    finally:
        # A session that never touched the database holds no connection and no objects,
        # so it is not closed either: on the predict path, with every cache warm, that
        # saves two greenlet round trips (~40 us) per request. A used session is closed
        # as `async with` closes it, shielded from cancellation.
        if session.in_transaction() or session.identity_map:
            async with session:
                pass


# scope="function": commit before the response is sent, so a client never sees a
# success whose write is still pending, and a failed commit becomes an error response.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
