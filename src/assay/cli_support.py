"""What every `assay` command that touches the database shares.

Commands never end in a stack trace for a failure an operator can fix: an unreachable
or refusing database or Redis, an unknown migration revision, a damaged secret file,
an unwritable data directory. `describe_failure` turns each into one line naming it.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import typer
from alembic.util import CommandError
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from assay.auth.deps import IdentityContext
from assay.core.cache import create_cache
from assay.core.config_view import mask_database_url, mask_url
from assay.core.db import Database
from assay.core.errors import AssayError
from assay.core.migrations import UnmigratedDatabaseError, migration_state, prepare_database
from assay.core.secrets_store import SecretsStoreError, with_generated_secrets
from assay.settings import Settings, load_settings

T = TypeVar("T")
EXIT_CONFIG_PROBLEM = 2


class DependencyUnreachableError(RuntimeError):
    """A service Assay needs (Redis) did not answer; the message names it."""


def _reason(exc: BaseException) -> str:
    # The driver's own message ("role ... does not exist", "Connection refused"), without
    # SQLAlchemy's statement echo and documentation link.
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(original).split("\n(Background on this error", 1)[0].strip()
    return text.splitlines()[0] if text else type(original).__name__


def _without_password(text: str, settings: Settings) -> str:
    try:
        password = make_url(settings.effective_database_url).password
    except ValueError:
        password = None
    return text.replace(password, "********") if password else text


def describe_failure(exc: BaseException, settings: Settings) -> str | None:
    """One line naming what went wrong, or None for a failure nobody anticipated."""
    database = mask_database_url(settings.effective_database_url)
    if isinstance(exc, UnmigratedDatabaseError | SecretsStoreError | DependencyUnreachableError):
        return str(exc)
    if isinstance(exc, CommandError):
        return f"The migration cannot run: {exc}."
    if isinstance(exc, SQLAlchemyError):
        reason = _without_password(_reason(exc), settings)
        return f"The database {database} is unreachable or refused Assay: {reason}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"Cannot use {exc.filename}: {exc.strerror or exc}."
    if isinstance(exc, OSError):
        reason = _without_password(str(exc) or type(exc).__name__, settings)
        return f"The database {database} is unreachable: {reason}"
    return None


@contextmanager
def reported_failures(title: str, settings: Settings) -> Iterator[None]:
    """Turn an anticipated failure into `title` and one line naming it, exit status 2."""
    try:
        yield
    except (UnmigratedDatabaseError, SecretsStoreError, DependencyUnreachableError) as exc:
        _report(title, str(exc))
    except (CommandError, SQLAlchemyError, OSError) as exc:
        _report(title, describe_failure(exc, settings) or type(exc).__name__)


def _report(title: str, problem: str) -> None:
    typer.echo(title, err=True)
    typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(EXIT_CONFIG_PROBLEM) from None


async def check_cache(settings: Settings) -> None:
    """Ping Redis, when configured, within the health-check timeout."""
    if not settings.redis_url:
        return
    cache = create_cache(settings)
    where = mask_url(settings.redis_url)
    try:
        await asyncio.wait_for(cache.ping(), settings.health_check_timeout_seconds)
    except TimeoutError:
        msg = f"Redis is unreachable at {where}: no answer within the health-check timeout."
        raise DependencyUnreachableError(msg) from None
    except (RedisError, OSError) as exc:
        msg = f"Redis is unreachable at {where}: {exc or type(exc).__name__}"
        raise DependencyUnreachableError(msg) from None
    finally:
        await cache.close()


def _missing_sqlite_file(settings: Settings) -> Path | None:
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return None if path.exists() else path


async def readiness_problems(settings: Settings) -> list[str]:
    """What the database and Redis say about a start: unreachable, or not migrated."""
    problems: list[str] = []
    missing = _missing_sqlite_file(settings)
    if missing is not None:
        # Not opened: opening would create an empty database as a side effect of a check.
        problems.append(
            f"The SQLite database {missing} does not exist; run `assay migrate upgrade`."
        )
    else:
        database = Database(settings)
        try:
            state = await migration_state(database.engine)
            if not state.is_current:
                problems.append(
                    f"The database schema is at {list(state.current) or 'nothing'}, not at "
                    f"{list(state.heads)}; run `assay migrate upgrade`."
                )
        except (SQLAlchemyError, OSError) as exc:
            problems.append(describe_failure(exc, settings) or type(exc).__name__)
        finally:
            await database.dispose()
    try:
        await check_cache(settings)
    except DependencyUnreachableError as exc:
        problems.append(str(exc))
    return problems


def run_with_identity(action: Callable[[AsyncSession, IdentityContext], Awaitable[T]]) -> T:
    """Run `action` in one transaction, with the same database rules as `assay serve`.

    The cache is the configured one: with Redis, a revocation made at the terminal
    (disable, reset) reaches every server on its next request.
    """
    base = load_settings()
    with reported_failures("Error:", base):
        settings = with_generated_secrets(base)

    async def main() -> T:
        database = Database(settings)
        cache = create_cache(settings)
        identity = IdentityContext.build(settings, database, cache)
        try:
            # Migrate in development, refuse a stale schema in production.
            await prepare_database(database.engine, settings)
            # Seal with the active data key, as the servers do.
            await identity.keeper.load()
            async with database.sessionmaker() as db:
                result = await action(db, identity)
                await db.commit()
                return result
        finally:
            await cache.close()
            await database.dispose()

    try:
        with reported_failures("Error:", settings):
            return asyncio.run(main())
    except AssayError as exc:
        typer.echo(f"Error: {exc.detail}", err=True)
        for error in exc.errors or []:
            field = error.get("field")
            prefix = f"{field}: " if field else ""
            typer.echo(f"  - {prefix}{error.get('message')}", err=True)
        # Refused input (an unknown slug, a conflict, a weak password): the operator's to fix.
        raise typer.Exit(EXIT_CONFIG_PROBLEM) from None


_GENERATED_ALPHABET = string.ascii_letters + string.digits
_GENERATED_LENGTH = 24


def _generated_password() -> str:
    return "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(_GENERATED_LENGTH))


def read_password(generate: bool) -> str:
    if generate:
        return _generated_password()
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
