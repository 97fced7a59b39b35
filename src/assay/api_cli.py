"""What the `assay` commands that are clients of a running Assay share (`assay jobs`,
`assay scans`): the URL and API-key options, an HTTP client, problem answers turned into
one line and an exit status, and following a job's progress over server-sent events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assay.settings import load_settings

EXIT_FAILED = 1

Url = Annotated[
    str | None,
    typer.Option(help="Base URL of the Assay API.", show_default="ASSAY_PUBLIC_URL"),
]
ApiKey = Annotated[
    str,
    typer.Option(
        envvar="ASSAY_API_KEY",
        help="API key with the permissions the command needs.",
        show_default=False,
    ),
]


def api_client(url: str | None, api_key: str) -> httpx.Client:
    base = url or load_settings().public_url
    return httpx.Client(
        base_url=base.rstrip("/"), headers={"x-api-key": api_key}, timeout=httpx.Timeout(30.0)
    )


def checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            problem = response.json()
            message = problem.get("detail") or problem.get("title")
        except ValueError:
            message = response.text[:200]
        typer.echo(f"Error ({response.status_code}): {message}", err=True)
        raise typer.Exit(EXIT_FAILED)
    return response.json()


def print_json(body: Any) -> None:
    typer.echo(json.dumps(body, indent=2))


def job_events(client: httpx.Client, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
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
                    checked(response)
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


def follow_job(client: httpx.Client, job_id: str, *, to_stderr: bool = False) -> None:
    """A progress bar over the job's events until it ends, then one line on how it ended
    (on stderr with `to_stderr`, when stdout is for the command's own answer)."""
    final: dict[str, Any] = {}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    console = Console(stderr=True) if to_stderr else None
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("queued", total=None)
        for _event, data in job_events(client, job_id):
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
        + (f" ({final['error']})" if final.get("error") else ""),
        err=to_stderr,
    )
    if final.get("state") != "succeeded":
        raise typer.Exit(EXIT_FAILED)
