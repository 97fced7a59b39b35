"""`assay mock-providers`: serve the mock VirusTotal, AbuseIPDB and URLhaus on this machine."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from assay.mock_providers.app import PREFIXES, create_app
from assay.mock_providers.dataset import DatasetError, load_dataset

EXIT_REFUSED = 2


def is_loopback(host: str) -> bool:
    """Whether HOST (an address or `localhost`) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def base_urls(host: str, port: int) -> dict[str, str]:
    """The base URL to configure for each provider, by provider name."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return {name: f"http://{shown}:{port}{prefix}" for name, prefix in PREFIXES.items()}


def mock_providers(
    host: Annotated[str, typer.Option(help="Bind address (loopback unless --allow-remote).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Bind port.")] = 8900,
    latency_ms: Annotated[
        float, typer.Option(min=0, help="Milliseconds added to every answer (benchmarks).")
    ] = 0,
    slow_seconds: Annotated[
        float, typer.Option(min=0, help="How long the data set's `slow` indicators take.")
    ] = 5.0,
    dataset: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="A data set YAML file instead of the shipped one."
        ),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Allow a non-loopback --host: others could get the fake data."
        ),
    ] = False,
) -> None:
    """Serve mock VirusTotal, AbuseIPDB and URLhaus APIs that answer FAKE data from a
    documented data set (docs/mock-providers.md), for offline demos and tests. Never point
    production at them."""
    if not is_loopback(host) and not allow_remote:
        typer.echo(
            f"Refusing to listen on {host}: the mock providers serve fake threat data. "
            "Use a loopback address, or --allow-remote if you mean it.",
            err=True,
        )
        raise typer.Exit(EXIT_REFUSED)
    try:
        loaded = load_dataset(dataset)
    except DatasetError as exc:
        typer.echo(f"The data set is invalid: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    app = create_app(loaded, latency_ms=latency_ms, slow_seconds=slow_seconds)
    typer.echo("Mock providers (FAKE data) - configure these base URLs:")
    for name, url in base_urls(host, port).items():
        typer.echo(f"  {name:<10} {url}")
    typer.echo(f"Request log (mock only): http://{host}:{port}/_mock/requests")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
