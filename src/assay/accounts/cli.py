"""`assay admin reset-password | unlock | disable`: an operator's commands for user
accounts (assay/cli.py puts them in the `assay admin` group, with orgs.cli's). There are
no default credentials anywhere."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.api_keys import service as api_keys
from assay.audit.models import SecurityAction
from assay.audit.service import CLI, record_event
from assay.auth.deps import IdentityContext
from assay.auth.models import AuthSession
from assay.auth.service import (
    check_new_password,
    end_sessions,
    find_user_by_email,
    lock_state,
    record_unlock,
    set_password,
)
from assay.auth.service import unlock as unlock_user
from assay.cli_support import EXIT_CONFIG_PROBLEM, read_password, run_with_identity
from assay.core.principal import PLATFORM

T = TypeVar("T")


_GENERATED_ALPHABET = string.ascii_letters + string.digits


_GENERATED_LENGTH = 24


async def _user(db: AsyncSession, email: str) -> User:
    user = await find_user_by_email(db, email)
    if user is None:
        typer.echo(f"Error: no user with email {email}", err=True)
        raise typer.Exit(EXIT_CONFIG_PROBLEM)
    return user


def reset_password(
    email: Annotated[str, typer.Option(help="Whose password to reset.")],
    generate_password: Annotated[bool, typer.Option(help="Generate one; must be changed.")] = False,
) -> None:
    """Set a new password and end every session of the user."""
    password = read_password(generate_password)

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        user = await _user(db, email)
        if not generate_password:
            await check_new_password(db, identity, user, password, field="password")
        await set_password(db, identity, user, password)
        user.must_change_password = generate_password
        before = lock_state(user, datetime.now(UTC))
        unlock_user(user)
        record_unlock(db, CLI, user, before, by="cli", actor=PLATFORM)
        await _end_all_sessions(db, identity, user, "password_reset")
        record_event(
            db,
            CLI,
            action=SecurityAction.PASSWORD_RESET,
            actor=PLATFORM,
            target_kind="user",
            target_id=user.id,
        )

    run_with_identity(action)
    typer.echo(f"Password reset for {email}; all sessions ended.")
    if generate_password:
        typer.echo(f"One-time password (change it at first sign-in): {password}")


async def _end_all_sessions(
    db: AsyncSession, identity: IdentityContext, user: User, reason: str
) -> None:
    sessions = (
        await db.execute(select(AuthSession).where(AuthSession.user_id == user.id))
    ).scalars()
    await end_sessions(db, identity, list(sessions), reason)


def unlock(email: Annotated[str, typer.Option(help="Whose account to unlock.")]) -> None:
    """Clear failure counters and locks, including a hard lock."""

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        user = await _user(db, email)
        before = lock_state(user, datetime.now(UTC))
        unlock_user(user)
        record_unlock(db, CLI, user, before, by="cli", actor=PLATFORM)

    run_with_identity(action)
    typer.echo(f"Unlocked {email}.")


def disable(email: Annotated[str, typer.Option(help="Whose account to disable.")]) -> None:
    """Disable a user, end every session and revoke every API key they created."""

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        user = await _user(db, email)
        user.status = "disabled"
        await _end_all_sessions(db, identity, user, "user_disabled")
        await api_keys.revoke_all_keys_of_user(
            db, identity, CLI, PLATFORM, user.id, reason="creator_disabled"
        )
        record_event(
            db,
            CLI,
            action=SecurityAction.USER_DISABLED,
            actor=PLATFORM,
            target_kind="user",
            target_id=user.id,
        )

    run_with_identity(action)
    typer.echo(f"Disabled {email}; all sessions ended and their API keys revoked.")
