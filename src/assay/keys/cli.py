"""`assay data-keys`: status, rotate, re-encrypt and retire the field-encryption keys.

(`assay keys` is the organisations' trusted publisher keys.)
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.service import CLI
from assay.auth.deps import IdentityContext
from assay.cli_support import EXIT_CONFIG_PROBLEM, run_with_identity
from assay.keys import service as keys
from assay.keys.models import KeyReencryption, RunState
from assay.keys.reencrypt import Reencryptor

data_keys_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The field-encryption data keys: status, rotate, reencrypt, retire (docs/keys.md).",
)


def _run_line(run: KeyReencryption) -> str:
    failed = f", {run.failed} could not be opened" if run.failed else ""
    return (
        f"re-encryption {run.id}: {run.state}, {run.done} of {run.total} re-sealed{failed} "
        f"(asked by {run.requested_by} at {run.created_at:%Y-%m-%d %H:%M:%SZ})"
    )


@data_keys_app.command("status")
def status_command() -> None:
    """Every data key, its state, and how many values it still seals, per column."""

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        found = await keys.status(db)
        for item in found.keys:
            key = item.key
            typer.echo(f"{key.key_id}  {key.state:<12}  {item.sealed:>8} values  ({key.origin})")
            for name, count in item.columns.items():
                typer.echo(f"    {name}: {count}")
        for kid, count in found.unknown.items():
            typer.echo(f"{kid}  unknown       {count:>8} values  (no such data key)")
        for run in found.runs:
            typer.echo(_run_line(run))

    run_with_identity(action)


@data_keys_app.command("rotate")
def rotate_command() -> None:
    """Make a new data key active; re-encryption is queued (run it with `reencrypt`, or
    let the servers' background loop do it)."""

    async def action(db: AsyncSession, identity: IdentityContext) -> keys.Rotation:
        return await keys.rotate(db, identity.keeper, CLI, None)

    rotation = run_with_identity(action)
    typer.echo(
        f"Data key {rotation.key.key_id} is active; {rotation.previous_key_id} now only "
        f"decrypts. Re-encryption {rotation.run.id} is queued."
    )


@data_keys_app.command("reencrypt")
def reencrypt_command(
    batches: Annotated[
        int | None,
        typer.Option(help="Stop after this many batches (the run is continued later)."),
    ] = None,
) -> None:
    """Re-seal every value not under the active key, here, with progress; continues an
    unfinished run (one whose worker stopped) or starts one."""

    async def action(db: AsyncSession, identity: IdentityContext) -> KeyReencryption:
        run = await keys.request_reencryption(db, identity.keeper, CLI, None)
        await db.commit()
        worker = Reencryptor(identity.settings, identity.keeper, identity.database.sessionmaker)
        if not await worker.claim(run.id):
            typer.echo(
                f"Re-encryption {run.id} is being worked by {run.lease_owner}; follow it "
                "with `assay data-keys status`.",
                err=True,
            )
            raise typer.Exit(EXIT_CONFIG_PROBLEM)

        def progress(current: KeyReencryption) -> None:
            typer.echo(f"  {current.done} of {current.total} re-sealed")

        done = await worker.run(run.id, max_batches=batches, progress=progress)
        if done.state != RunState.SUCCEEDED:
            await worker.release(run.id)  # stopped on purpose: the next run continues it
        return done

    run = run_with_identity(action)
    typer.echo(_run_line(run))
    if run.state != RunState.SUCCEEDED:
        typer.echo("Stopped before the end; run `assay data-keys reencrypt` again to continue.")


@data_keys_app.command("retire")
def retire_command(key_id: Annotated[str, typer.Argument(help="The data key's id (hex).")]) -> None:
    """Erase a decrypt-only key; refused, with the count, while any value uses it."""

    async def action(db: AsyncSession, identity: IdentityContext) -> keys.Retirement:
        return await keys.retire(db, identity.keeper, CLI, None, key_id)

    retired = run_with_identity(action)
    typer.echo(f"Data key {retired.key.key_id} is retired; its material is erased.")
