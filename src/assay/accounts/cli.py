"""`assay admin`: what an operator does at a terminal, with no default credentials."""

from __future__ import annotations

import secrets
import string
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.api_keys import service as api_keys
from assay.audit.service import CLI, record_event
from assay.auth.context import IdentityContext
from assay.auth.lockout import lock_state, record_unlock
from assay.auth.lockout import unlock as unlock_user
from assay.auth.models import AuthSession
from assay.auth.service import end_sessions, find_user_by_email, set_password
from assay.cli_support import run_with_identity
from assay.core.principal import PLATFORM
from assay.orgs import service as orgs

admin_app = typer.Typer(no_args_is_help=True, help="Manage administrators and users.")
org_app = typer.Typer(
    no_args_is_help=True, help="Change an organisation's scoring quota and security policy."
)
admin_app.add_typer(org_app, name="org")
T = TypeVar("T")
_GENERATED_ALPHABET = string.ascii_letters + string.digits
_GENERATED_LENGTH = 24


def _generated_password() -> str:
    return "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(_GENERATED_LENGTH))


def _read_password(generate: bool) -> str:
    if generate:
        return _generated_password()
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


async def _user(db: AsyncSession, email: str) -> User:
    user = await find_user_by_email(db, email)
    if user is None:
        typer.echo(f"Error: no user with email {email}", err=True)
        raise typer.Exit(1)
    return user


@admin_app.command("create")
def create(
    email: Annotated[str, typer.Option(help="The administrator's email.")],
    org: Annotated[
        str | None, typer.Option(help="Also create this organisation, owned by them.")
    ] = None,
    generate_password: Annotated[
        bool, typer.Option(help="Generate a strong password, print it once; must be changed.")
    ] = False,
) -> None:
    """Create a platform administrator (the password comes from a prompt or stdin)."""
    password = _read_password(generate_password)

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        user = await orgs.create_user(
            db,
            identity,
            email=email,
            password=password,
            is_platform_admin=True,
            must_change_password=generate_password,
            check_policy=not generate_password,
            extra_context=[org] if org else None,
        )
        record_event(
            db,
            CLI,
            action="user.created",
            actor=PLATFORM,
            target_kind="user",
            target_id=user.id,
            details={"platform_admin": True},
        )
        if org:
            organisation = await orgs.create_organisation(db, CLI, PLATFORM, name=org, slug=None)
            await orgs.add_member(db, CLI, PLATFORM, organisation.id, user, "owner")
            typer.echo(f"Created organisation {organisation.slug} ({organisation.id}).")

    run_with_identity(action)
    typer.echo(f"Created platform administrator {email}.")
    if generate_password:
        typer.echo(f"One-time password (change it at first sign-in): {password}")
    typer.echo("Platform administrators must enrol MFA at their first sign-in.")


@admin_app.command("reset-password")
def reset_password(
    email: Annotated[str, typer.Option(help="Whose password to reset.")],
    generate_password: Annotated[bool, typer.Option(help="Generate one; must be changed.")] = False,
) -> None:
    """Set a new password and end every session of the user."""
    password = _read_password(generate_password)

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        user = await _user(db, email)
        if not generate_password:
            from assay.auth.service import check_new_password

            await check_new_password(db, identity, user, password, field="password")
        await set_password(db, identity, user, password)
        user.must_change_password = generate_password
        before = lock_state(user, datetime.now(UTC))
        unlock_user(user)
        record_unlock(db, CLI, user, before, by="cli", actor=PLATFORM)
        await _end_all_sessions(db, identity, user, "password_reset")
        record_event(
            db, CLI, action="password.reset", actor=PLATFORM, target_kind="user", target_id=user.id
        )

    run_with_identity(action)
    typer.echo(f"Password reset for {email}; all sessions ended.")
    if generate_password:
        typer.echo(f"One-time password (change it at first sign-in): {password}")


async def _end_all_sessions(
    db: AsyncSession, identity: IdentityContext, user: User, reason: str
) -> None:
    from sqlalchemy import select

    sessions = (
        await db.execute(select(AuthSession).where(AuthSession.user_id == user.id))
    ).scalars()
    await end_sessions(db, identity, list(sessions), reason)


@admin_app.command("unlock")
def unlock(email: Annotated[str, typer.Option(help="Whose account to unlock.")]) -> None:
    """Clear failure counters and locks, including a hard lock."""

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        user = await _user(db, email)
        before = lock_state(user, datetime.now(UTC))
        unlock_user(user)
        record_unlock(db, CLI, user, before, by="cli", actor=PLATFORM)

    run_with_identity(action)
    typer.echo(f"Unlocked {email}.")


@admin_app.command("disable")
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
            db, CLI, action="user.disabled", actor=PLATFORM, target_kind="user", target_id=user.id
        )

    run_with_identity(action)
    typer.echo(f"Disabled {email}; all sessions ended and their API keys revoked.")


# --- organisations --------------------------------------------------------------------


@org_app.command("set-quota")
def set_quota(
    org: Annotated[str, typer.Option(help="The organisation's slug or id.")],
    quota: Annotated[
        str | None,
        typer.Option(help='Scoring quota in limits notation, e.g. "100/minute;10000/day".'),
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Remove the override: the default quota applies.")
    ] = False,
) -> None:
    """Set an organisation's scoring quota (every server applies it within seconds)."""
    if (quota is None and not default) or (quota is not None and default):
        typer.echo("Error: give either --quota or --default.", err=True)
        raise typer.Exit(2)

    async def action(db: AsyncSession, identity: IdentityContext) -> str:
        organisation = await orgs.find_organisation(db, org)
        changed = await orgs.set_scoring_quota(db, identity, CLI, PLATFORM, organisation.id, quota)
        return changed.slug

    slug = run_with_identity(action)
    shown = quota if quota is not None else "the default"
    typer.echo(f"Scoring quota of {slug}: {shown}.")


@org_app.command("set-policy")
def set_policy(
    org: Annotated[str, typer.Option(help="The organisation's slug or id.")],
    mfa_required: Annotated[
        bool | None,
        typer.Option("--mfa-required/--no-mfa-required", help="Require MFA of every member."),
    ] = None,
    mfa_required_roles: Annotated[
        str | None,
        typer.Option(help="Roles that must use MFA, comma-separated ('' for none)."),
    ] = None,
    min_password_length: Annotated[
        int | None,
        typer.Option(help="Minimum password length (below 15 only with --mfa-required)."),
    ] = None,
    default_password_length: Annotated[
        bool, typer.Option("--default-password-length", help="Use the server's minimum.")
    ] = False,
) -> None:
    """Change an organisation's MFA requirement and minimum password length."""
    changes: dict[str, Any] = {}
    if mfa_required is not None:
        changes["mfa_required"] = mfa_required
    if mfa_required_roles is not None:
        changes["mfa_required_roles"] = [
            role.strip() for role in mfa_required_roles.split(",") if role.strip()
        ]
    if min_password_length is not None and default_password_length:
        typer.echo("Error: give --min-password-length or --default-password-length.", err=True)
        raise typer.Exit(2)
    if min_password_length is not None:
        changes["min_password_length"] = min_password_length
    if default_password_length:
        changes["min_password_length"] = None
    if not changes:
        typer.echo("Error: nothing to change.", err=True)
        raise typer.Exit(2)

    async def action(db: AsyncSession, identity: IdentityContext) -> str:
        organisation = await orgs.find_organisation(db, org)
        changed = await orgs.update_policy(db, identity, CLI, PLATFORM, organisation.id, changes)
        roles = ", ".join(changed.mfa_required_roles) or "none"
        length = changed.min_password_length or identity.settings.password_min_length
        return (
            f"{changed.slug}: MFA required of everyone: {changed.mfa_required}; "
            f"of roles: {roles}; minimum password length: {length}."
        )

    typer.echo(run_with_identity(action))
