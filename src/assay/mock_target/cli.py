"""`assay mock-target`: serve the FAKE vulnerable, refusing and flaky AI models on this
machine."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
import uvicorn

from assay.mock_target.app import create_app
from assay.mock_target.rest import REST_MODES
from assay.mock_target.state import Mode

EXIT_REFUSED = 2


def is_loopback(host: str) -> bool:
    """Whether HOST (an address or `localhost`) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    """The mock target's base URL, an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def mock_target(
    host: Annotated[str, typer.Option(help="Bind address; loopback only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Bind port.")] = 8766,
    latency_ms: Annotated[
        float, typer.Option(min=0, help="Milliseconds each model answer takes (benchmarks).")
    ] = 0,
) -> None:
    """Serve FAKE AI models (docs/mock-target.md) for red-team demos and tests: a vulnerable
    one, a refusing one and a flaky one. Loopback only; never a real model."""
    if not is_loopback(host):
        typer.echo(
            f"Refusing to listen on {host}: the mock target is a deliberately vulnerable "
            "fake model for this machine only. Use a loopback address.",
            err=True,
        )
        raise typer.Exit(EXIT_REFUSED)
    app = create_app(latency_seconds=latency_ms / 1000)
    base = base_url(host, port)
    typer.echo("Mock target (FAKE models) - OpenAI-compatible base URLs:")
    for mode in Mode:
        typer.echo(f"  {mode:<10} {base}/{mode}/v1")
    typer.echo('Generic REST (POST {"input": ...}):')
    for mode in REST_MODES:
        typer.echo(f"  {mode:<10} {base}/{mode}/rest/generate")
    typer.echo(f"Request log (mock only): {base}/_mock/requests")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
