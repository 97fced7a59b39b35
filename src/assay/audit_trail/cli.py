"""`assay audit`: verify an organisation's (or the platform's) audit chain, or an export."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit_trail.chain import Report
from assay.audit_trail.service import (
    ExportFormatError,
    build_sealer,
    export_lines,
    verify_chain,
    verify_export,
)
from assay.audit_trail.signing import SignatureChecker
from assay.auth.deps import IdentityContext
from assay.cli_support import EXIT_CONFIG_PROBLEM, run_with_identity
from assay.orgs.service import find_organisation

audit_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The tamper-evident audit trail (docs/audit.md).",
)
# Exit status when the chain or the export does not verify.
EXIT_TAMPERED = 1

OrgOption = Annotated[str | None, typer.Option(help="Slug or id of the organisation.")]
PlatformOption = Annotated[
    bool, typer.Option("--platform", help="The platform's chain (events of no organisation).")
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_CONFIG_PROBLEM)


async def _chain_org(db: AsyncSession, org: str | None, platform: bool) -> uuid.UUID | None:
    if platform:
        return None
    if org is None:  # checked before connecting; kept for the type checker
        _fail("name --org SLUG or --platform")
    org_id = (await find_organisation(db, org)).id
    # The chain is read in sessions of the sealer's own; this one holds no snapshot.
    await db.rollback()
    return org_id


def _print(report: Report) -> None:
    typer.echo(f"chain {report.chain}: {report.events} events checked, head {report.head_seq}")
    typer.echo(
        f"checkpoints: {report.checkpoints}"
        + (f", last at {report.last_checkpoint_seq}" if report.last_checkpoint_seq else "")
    )
    problem = report.problem
    if problem is None:
        typer.echo("OK: the chain is intact")
        return
    where = f" at seq {problem.seq}" if problem.seq is not None else ""
    event = f" (event {problem.event_id})" if problem.event_id else ""
    typer.echo(f"FAILED: {problem.kind}{where}{event}: {problem.message}")
    raise typer.Exit(EXIT_TAMPERED)


@audit_app.command("verify")
def verify_command(
    org: OrgOption = None,
    platform: PlatformOption = False,
    file: Annotated[
        Path | None, typer.Option(help="Verify this export (JSON Lines) instead of the database.")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="With --file: the audit public key (PEM, from GET /v1/audit/public-key). "
            "Without it, this installation's own key is used."
        ),
    ] = None,
) -> None:
    """Recompute a chain and report its first edited, deleted, inserted or reordered
    event, or a cut tail. Exit status 1 when it does not verify."""
    if file is not None:
        if org is not None or platform:
            _fail("--file verifies the export alone; leave out --org and --platform")
        _print(_verify_file(file, public_key))
        return
    if (org is None) == (not platform):
        _fail("name --org SLUG or --platform (one of them)")

    async def action(db: AsyncSession, identity: IdentityContext) -> Report:
        org_id = await _chain_org(db, org, platform)
        sealer = build_sealer(identity.settings, identity.database.sessionmaker)
        return await verify_chain(sealer, org_id)

    _print(run_with_identity(action))


def _verify_file(file: Path, public_key: Path | None) -> Report:
    if public_key is not None:
        try:
            checker = SignatureChecker.from_pem(public_key.read_bytes())
        except OSError as exc:
            _fail(f"{public_key}: {exc.strerror or type(exc).__name__}")
        except (ValueError, TypeError) as exc:
            _fail(f"{public_key}: not an Ed25519 public key in PEM ({exc})")
    else:

        async def local_key(_db: AsyncSession, identity: IdentityContext) -> SignatureChecker:
            sealer = build_sealer(identity.settings, identity.database.sessionmaker)
            return sealer.signer.checker()

        checker = run_with_identity(local_key)
    try:
        return verify_export(file, checker)
    except OSError as exc:
        _fail(f"{file}: {exc.strerror or type(exc).__name__}")
    except ExportFormatError as exc:
        _fail(f"{file}: {exc}")


@audit_app.command("export")
def export_command(
    org: OrgOption = None,
    platform: PlatformOption = False,
    output: Annotated[
        Path | None, typer.Option(help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Write a chain with its signed checkpoints as JSON Lines (what GET /v1/audit/export
    gives an organisation), signing a checkpoint at its head first."""
    if (org is None) == (not platform):
        _fail("name --org SLUG or --platform (one of them)")

    async def action(db: AsyncSession, identity: IdentityContext) -> list[str]:
        org_id = await _chain_org(db, org, platform)
        sealer = build_sealer(identity.settings, identity.database.sessionmaker)
        async with sealer.sessionmaker() as reading:
            return [line async for line in export_lines(sealer, reading, org_id)]

    lines = run_with_identity(action)
    if output is None:
        sys.stdout.writelines(lines)
        return
    try:
        output.write_text("".join(lines), encoding="utf-8")
    except OSError as exc:
        _fail(f"{output}: {exc.strerror or type(exc).__name__}")
    typer.echo(f"{len(lines) - 1} records written to {output}", err=True)
