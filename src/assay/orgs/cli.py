"""`assay admin create` (a platform administrator, optionally with an organisation) and
`assay admin org` (an organisation's scoring quota and security policy)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts import service as accounts
from assay.audit.models import SecurityAction
from assay.audit.service import CLI, record_event
from assay.auth.deps import IdentityContext
from assay.cli_support import EXIT_CONFIG_PROBLEM, read_password, run_with_identity
from assay.core.principal import PLATFORM
from assay.orgs import service as orgs

org_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Change an organisation's scoring quota and security policy.",
)


def create_admin(
    email: Annotated[str, typer.Option(help="The administrator's email.")],
    org: Annotated[
        str | None, typer.Option(help="Also create this organisation, owned by them.")
    ] = None,
    generate_password: Annotated[
        bool, typer.Option(help="Generate a strong password, print it once; must be changed.")
    ] = False,
) -> None:
    """Create a platform administrator (the password comes from a prompt or stdin)."""
    password = read_password(generate_password)

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        user = await accounts.create_user(
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
            action=SecurityAction.USER_CREATED,
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
        raise typer.Exit(EXIT_CONFIG_PROBLEM)

    async def action(db: AsyncSession, identity: IdentityContext) -> str:
        organisation = await orgs.find_organisation(db, org)
        # Serving processes pick the change up within org_quota_cache_seconds.
        changed = await orgs.set_scoring_quota(db, None, CLI, PLATFORM, organisation.id, quota)
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
        raise typer.Exit(EXIT_CONFIG_PROBLEM)
    if min_password_length is not None:
        changes["min_password_length"] = min_password_length
    if default_password_length:
        changes["min_password_length"] = None
    if not changes:
        typer.echo("Error: nothing to change.", err=True)
        raise typer.Exit(EXIT_CONFIG_PROBLEM)

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
