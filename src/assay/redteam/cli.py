"""`assay redteam ...`: commands that need no server (the scans themselves go through the API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay.engine.errors import InvalidModelDefinition
from assay.redteam.calibration import CalibrationError, CalibrationReport, calibrate

EXIT_UNUSABLE = 2

redteam_app = typer.Typer(
    help="Red-team scans: probe sets and detectors (docs/redteam-probes.md).",
    no_args_is_help=True,
)


@redteam_app.callback()
def redteam_group() -> None:
    """Red-team scans: probe sets and detectors (docs/redteam-probes.md)."""


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def render_table(report: CalibrationReport) -> str:
    """The report as a fixed-width table, one line per detector."""
    headers: tuple[str, ...] = ("detector", "positives", "negatives", "false pos.", "FP rate")
    headers += ("false neg.", "FN rate")
    rows = [
        (
            d.detector,
            str(d.positives),
            str(d.negatives),
            str(d.false_positives),
            _rate(d.false_positive_rate),
            str(d.false_negatives),
            _rate(d.false_negative_rate),
        )
        for d in report.detectors
    ]
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    out = [f"corpus: {report.corpus} ({report.entries} answers)", line(headers)]
    out.extend(line(row) for row in rows)
    errors = sum(d.errors for d in report.detectors)
    if errors:
        out.append(f"{errors} answer(s) could not be scored; --json lists them")
    return "\n".join(out)


@redteam_app.command("calibrate")
def calibrate_command(
    pack: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="A red-team pack directory (default: the one shipped with Assay).",
        ),
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False, help="A corpus file (default: the pack's calibration/corpus.yaml)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report, with every miss, as JSON.")
    ] = False,
) -> None:
    """Score the labelled corpus with every detector of the pack and print each detector's
    false-positive and false-negative rates (>= 0.5 counts as the detector firing)."""
    try:
        report = calibrate(pack, corpus)
    except (CalibrationError, InvalidModelDefinition) as exc:
        typer.echo(f"cannot calibrate: {exc}", err=True)
        raise typer.Exit(EXIT_UNUSABLE) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_table(report))
