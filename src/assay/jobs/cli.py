"""`assay jobs`: submit, list, show, watch, cancel and download jobs over the HTTP API.

These commands are clients: they talk to a running Assay (`--url`, default the public
URL setting) with an API key (`--api-key` or ASSAY_API_KEY), like any other program.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assay.settings import load_settings

jobs_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Submit and follow jobs on a running Assay."
)
EXIT_FAILED = 1

Url = Annotated[
    str | None,
    typer.Option(help="Base URL of the Assay API.", show_default="ASSAY_PUBLIC_URL"),
]
ApiKey = Annotated[
    str,
    typer.Option(
        envvar="ASSAY_API_KEY", help="API key (jobs:read, jobs:write, predict).", show_default=False
    ),
]
JobId = Annotated[str, typer.Argument(help="The job's id.")]


def _client(url: str | None, api_key: str) -> httpx.Client:
    base = url or load_settings().public_url
    return httpx.Client(
        base_url=base.rstrip("/"), headers={"x-api-key": api_key}, timeout=httpx.Timeout(30.0)
    )


def _checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            problem = response.json()
            message = problem.get("detail") or problem.get("title")
        except ValueError:
            message = response.text[:200]
        typer.echo(f"Error ({response.status_code}): {message}", err=True)
        raise typer.Exit(EXIT_FAILED)
    return response.json()


def _print(body: Any) -> None:
    typer.echo(json.dumps(body, indent=2))


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
    with _client(url, api_key) as client, file.open("rb") as body:
        job = _checked(client.post("/v1/jobs", data=form, files={"file": (file.name, body)}))
        if not watch_it:
            _print(job)
            return
        typer.echo(f"job {job['id']}", err=True)
        _follow(client, job["id"])


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
    with _client(url, api_key) as client:
        page = _checked(client.get("/v1/jobs", params=params))
    for job in page["items"]:
        progress = job["progress"]
        typer.echo(
            f"{job['id']}  {job['state']:<10} {progress['done']}/{progress['total']}"
            f"  {job['kind']}  {job['created_at']}"
        )


@jobs_app.command("show")
def show(job_id: JobId, api_key: ApiKey, url: Url = None) -> None:
    """One job, as JSON."""
    with _client(url, api_key) as client:
        _print(_checked(client.get(f"/v1/jobs/{job_id}")))


@jobs_app.command("cancel")
def cancel(job_id: JobId, api_key: ApiKey, url: Url = None) -> None:
    """Cancel a job: a queued one at once, a running one at its next checkpoint."""
    with _client(url, api_key) as client:
        _print(_checked(client.post(f"/v1/jobs/{job_id}/cancel")))


@jobs_app.command("watch")
def watch(job_id: JobId, api_key: ApiKey, url: Url = None) -> None:
    """Follow a job's progress (server-sent events) with a progress bar until it ends."""
    with _client(url, api_key) as client:
        _follow(client, job_id)


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
        _client(url, api_key) as client,
        client.stream("GET", f"/v1/jobs/{job_id}/result", params={"format": fmt}) as response,
    ):
        if response.status_code >= 400:
            response.read()
            _checked(response)
        sink = output.open("wb") if output is not None else sys.stdout.buffer
        try:
            for block in response.iter_bytes():
                sink.write(block)
        finally:
            if output is not None:
                sink.close()
            else:
                sink.flush()


def _events(client: httpx.Client, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of the job's event stream, resumed after a dropped connection."""
    last_id: str | None = None
    while True:
        headers = {"accept": "text/event-stream"}
        if last_id is not None:
            headers["last-event-id"] = last_id
        try:
            with client.stream(
                "GET",
                f"/v1/jobs/{job_id}/events",
                headers=headers,
                timeout=httpx.Timeout(30.0, read=None),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _checked(response)
                event, data = "message", ""
                for line in response.iter_lines():
                    if line.startswith(":"):
                        continue  # a heartbeat
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif not line and data:
                        yield event, json.loads(data)
                        if event == "done":
                            return
                        event, data = "message", ""
        except httpx.TransportError:
            continue  # reconnect, resuming after the last event seen


def _follow(client: httpx.Client, job_id: str) -> None:
    final: dict[str, Any] = {}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=None, transient=False) as bar:
        task = bar.add_task("queued", total=None)
        for _event, data in _events(client, job_id):
            progress = data["progress"]
            bar.update(
                task,
                description=data["state"],
                completed=progress["done"],
                total=progress["total"] or None,
            )
            final = data
    progress = final.get("progress", {})
    typer.echo(
        f"{final.get('state')}: {progress.get('done')} of {progress.get('total')} rows, "
        f"{progress.get('row_errors')} with errors"
        + (f" ({final['error']})" if final.get("error") else "")
    )
    if final.get("state") != "succeeded":
        raise typer.Exit(EXIT_FAILED)
