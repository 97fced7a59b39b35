"""`assay jobs`: submit, list, show, watch, cancel and download jobs over the HTTP API.

These commands are clients: they talk to a running Assay (`--url`, default the public
URL setting) with an API key (`--api-key` or ASSAY_API_KEY), like any other program.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from assay.api_cli import EXIT_FAILED, ApiKey, Url, api_client, checked, follow_job, print_json

jobs_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Submit and follow jobs on a running Assay."
)

JobId = Annotated[str, typer.Argument(help="The job's id.")]


@jobs_app.command("submit")
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSONL rows.")],
    model: Annotated[str, typer.Option(help="The model to score with.")],
    api_key: ApiKey,
    url: Url = None,
    alias: Annotated[
        str | None, typer.Option(help="Alias of the version (default production).")
    ] = None,
    version: Annotated[int | None, typer.Option(min=1, help="A version number instead.")] = None,
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
) -> None:
    """Upload a CSV or JSONL file for batch scoring; print the job."""
    form: dict[str, str] = {"model": model}
    if alias is not None:
        form["alias"] = alias
    if version is not None:
        form["version"] = str(version)
    fmt = "csv" if file.suffix.lower() == ".csv" else "jsonl"
    form["format"] = fmt
    with api_client(url, api_key) as client, file.open("rb") as body:
        job = checked(client.post("/v1/jobs", data=form, files={"file": (file.name, body)}))
        if not watch_it:
            print_json(job)
            return
        typer.echo(f"job {job['id']}", err=True)
        follow_job(client, job["id"])


@jobs_app.command("list")
def list_jobs(
    api_key: ApiKey,
    url: Url = None,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most jobs to list.")] = 50,
) -> None:
    """The organisation's jobs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if state is not None:
        params["state"] = state
    with api_client(url, api_key) as client:
        page = checked(client.get("/v1/jobs", params=params))
    for job in page["items"]:
        progress = job["progress"]
        typer.echo(
            f"{job['id']}  {job['state']:<10} {progress['done']}/{progress['total']}"
            f"  {job['kind']}  {job['created_at']}"
        )


@jobs_app.command("show")
def show(job_id: JobId, api_key: ApiKey, url: Url = None) -> None:
    """One job, as JSON."""
    with api_client(url, api_key) as client:
        print_json(checked(client.get(f"/v1/jobs/{job_id}")))


@jobs_app.command("cancel")
def cancel(job_id: JobId, api_key: ApiKey, url: Url = None) -> None:
    """Cancel a job: a queued one at once, a running one at its next checkpoint."""
    with api_client(url, api_key) as client:
        print_json(checked(client.post(f"/v1/jobs/{job_id}/cancel")))


@jobs_app.command("watch")
def watch(job_id: JobId, api_key: ApiKey, url: Url = None) -> None:
    """Follow a job's progress (server-sent events) with a progress bar until it ends."""
    with api_client(url, api_key) as client:
        follow_job(client, job_id)


@jobs_app.command("result")
def result(
    job_id: JobId,
    api_key: ApiKey,
    url: Url = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Download a finished job's result rows."""
    if fmt not in ("csv", "jsonl"):
        typer.echo("Error: --format is csv or jsonl.", err=True)
        raise typer.Exit(EXIT_FAILED)
    with (
        api_client(url, api_key) as client,
        client.stream("GET", f"/v1/jobs/{job_id}/result", params={"format": fmt}) as response,
    ):
        if response.status_code >= 400:
            response.read()
            checked(response)
        sink = output.open("wb") if output is not None else sys.stdout.buffer
        try:
            for block in response.iter_bytes():
                sink.write(block)
        finally:
            if output is not None:
                sink.close()
            else:
                sink.flush()
