"""`assay dev`: helpers for development machines."""

from __future__ import annotations

from typing import Annotated

import typer

from assay.core.mail import list_outbox, outbox_directory
from assay.settings import load_settings

dev_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Development helpers.")


@dev_app.command("outbox")
def outbox(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many messages.")] = 50,
) -> None:
    """List mail written to the outbox (no SMTP server configured), newest first."""
    directory = outbox_directory(load_settings())
    entries = list_outbox(directory)
    if not entries:
        typer.echo(f"The outbox is empty ({directory}).")
        return
    for entry in entries[:limit]:
        sent = entry.sent_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        typer.echo(f"{sent}  {entry.to}  {entry.subject}\n    {entry.path}")
    if len(entries) > limit:
        typer.echo(f"... and {len(entries) - limit} older message(s) in {directory}.")
