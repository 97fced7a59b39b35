"""`assay scans`: start, follow, cancel red-team scans and download their reports over
the HTTP API, with an API key (scans:run, scans:read, jobs:read), like any other client.

`--fail-on-findings` makes a CI step fail when the scan found anything: the exit status is
2 then, 1 when the scan itself failed.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from assay.api_cli import ApiKey, Url, api_client, checked, follow_job, print_json

scans_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Start and follow red-team scans on a running Assay.",
)
EXIT_FOUND = 2
ScanId = Annotated[str, typer.Argument(help="The scan's id.")]
FORMATS = ("json", "sarif", "junit", "html", "garak")


@scans_app.command("start")
def start(
    target: Annotated[str, typer.Option(help="The target's name.")],
    api_key: ApiKey,
    url: Url = None,
    probe_set: Annotated[
        list[str] | None, typer.Option("--probe-set", help="A probe set (repeat); all if none.")
    ] = None,
    transform: Annotated[
        list[str] | None, typer.Option("--transform", help="A transform (repeat).")
    ] = None,
    max_requests: Annotated[int | None, typer.Option(help="Budget: requests at most.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight.")] = None,
    judge: Annotated[
        str | None, typer.Option(help="A target that grades every answer (LLM-as-judge).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the scan until it ends.")] = False,
    fail_on_findings: Annotated[
        bool, typer.Option(help="With --wait: exit 2 when an attack worked.")
    ] = False,
) -> None:
    """Start a scan; prints it (with --wait, follows it and prints its findings)."""
    body: dict[str, object] = {"target": target, "transforms": transform or []}
    if probe_set:
        body["probe_sets"] = probe_set
    if max_requests is not None:
        body["max_requests"] = max_requests
    if concurrency is not None:
        body["concurrency"] = concurrency
    if judge is not None:
        body["judge"] = {"target": judge}
    with api_client(url, api_key) as client:
        scan = checked(client.post("/v1/scans", json=body))
        if not wait:
            print_json(scan)
            return
        typer.echo(f"scan {scan['id']}", err=True)
        with contextlib.suppress(typer.Exit):  # a cancelled scan still has findings to show
            follow_job(client, scan["job_id"], to_stderr=True)
        scan = checked(client.get(f"/v1/scans/{scan['id']}"))
        print_json(scan)
        if scan["state"] != "succeeded":
            raise typer.Exit(1)
        if fail_on_findings and scan["hits"] > 0:
            raise typer.Exit(EXIT_FOUND)


@scans_app.command("list")
def list_scans(api_key: ApiKey, url: Url = None) -> None:
    """The organisation's latest scans."""
    with api_client(url, api_key) as client:
        print_json(checked(client.get("/v1/scans")))


@scans_app.command("show")
def show(scan_id: ScanId, api_key: ApiKey, url: Url = None) -> None:
    """One scan: state, progress per probe set, budget, findings."""
    with api_client(url, api_key) as client:
        print_json(checked(client.get(f"/v1/scans/{scan_id}")))


@scans_app.command("cancel")
def cancel(scan_id: ScanId, api_key: ApiKey, url: Url = None) -> None:
    """Cancel a scan; it stops at its next checkpoint and keeps what it found."""
    with api_client(url, api_key) as client:
        print_json(checked(client.post(f"/v1/scans/{scan_id}/cancel")))


@scans_app.command("report")
def report(
    scan_id: ScanId,
    api_key: ApiKey,
    url: Url = None,
    fmt: Annotated[str, typer.Option("--format", help=", ".join(FORMATS))] = "json",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Download the scan's report."""
    if fmt not in FORMATS:
        typer.echo(f"Error: --format is one of {', '.join(FORMATS)}.", err=True)
        raise typer.Exit(1)
    with api_client(url, api_key) as client:
        response = client.get(f"/v1/scans/{scan_id}/report", params={"format": fmt})
        if response.status_code >= 400:
            checked(response)
        if output is not None:
            output.write_bytes(response.content)
        else:
            sys.stdout.buffer.write(response.content)
            sys.stdout.buffer.flush()
