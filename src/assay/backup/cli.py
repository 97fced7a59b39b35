"""`assay backup` and `assay restore`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from assay.backup.errors import BackupError
from assay.backup.service import Summary, restore_backup, take_backup
from assay.cli_support import reported_failures
from assay.core.secrets_store import with_generated_secrets
from assay.settings import load_settings

PASSPHRASE_ENV = "ASSAY_BACKUP_PASSPHRASE"  # noqa: S105 - a variable name  # nosec B105
EXIT_FAILED = 1

PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        help="File holding the passphrase that seals (or opens) the secrets; otherwise "
        f"{PASSPHRASE_ENV}, otherwise a prompt.",
        exists=True,
        dir_okay=False,
    ),
]


def _passphrase(path: Path | None, *, confirm: bool) -> str:
    if path is not None:
        return path.read_text(encoding="utf-8").rstrip("\n")
    given = os.environ.get(PASSPHRASE_ENV)
    if given:
        return given
    if not sys.stdin.isatty():
        typer.echo(f"A passphrase is needed: --passphrase-file or {PASSPHRASE_ENV}.", err=True)
        raise typer.Exit(EXIT_FAILED)
    return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))


def _report(verb: str, summary: Summary) -> None:
    rows = sum(summary.tables.values())
    typer.echo(
        f"{verb} {summary.path}: schema {summary.revision}, {rows} rows in "
        f"{len(summary.tables)} tables, {summary.artifacts} artifacts, "
        f"secrets {'included' if summary.secrets else 'not included'}."
    )


def backup(
    destination: Annotated[Path, typer.Argument(help="New directory to write the backup into.")],
    with_secrets: Annotated[
        bool,
        typer.Option(
            help="Also back up the signing, session and encryption secrets, sealed with a "
            "passphrase. Without them, encrypted data restores only where the same "
            "secrets are configured."
        ),
    ] = False,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Back up the database (one consistent snapshot) and the artifact store."""
    base = load_settings()
    with reported_failures("Error:", base):
        settings = with_generated_secrets(base) if with_secrets else base
    passphrase = _passphrase(passphrase_file, confirm=True) if with_secrets else None
    try:
        with reported_failures("Error:", settings):
            summary = asyncio.run(take_backup(settings, destination, passphrase=passphrase))
    except BackupError as exc:
        typer.echo(f"Backup failed: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    _report("Backed up to", summary)


def restore(
    source: Annotated[Path, typer.Argument(help="A directory `assay backup` wrote.")],
    passphrase_file: PassphraseFile = None,
    skip_secrets: Annotated[
        bool, typer.Option(help="Do not restore the sealed secrets, even if the backup has them.")
    ] = False,
) -> None:
    """Restore a backup into an empty installation (new database, new data directory).

    Every file is checked against the manifest's digests before anything is written."""
    settings = load_settings()
    sealed = (source / "secrets.sealed.json").is_file()
    passphrase = None
    if sealed and not skip_secrets:
        passphrase = _passphrase(passphrase_file, confirm=False)
    try:
        with reported_failures("Error:", settings):
            summary = asyncio.run(restore_backup(settings, source, passphrase=passphrase))
    except BackupError as exc:
        typer.echo(f"Restore failed: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    _report("Restored from", summary)
    typer.echo("Check the artifacts with `assay models verify`.")
