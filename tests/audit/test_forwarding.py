"""Sealed audit events forwarded to a SIEM: JSON lines on stdout, RFC 5424 over UDP, or
POSTs to an HTTP sink that keeps what a failed POST owed for the next one."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from assay.audit_trail.sealing import Sealer
from assay.settings import Settings
from tests.audit.conftest import write_events
from tests.conftest import KNOWN_SECRETS

SINK_TOKEN = "siem-ingest-token-0123456789"
KNOWN_SECRETS.add(SINK_TOKEN)


def _events(lines: list[str]) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        try:
            body = json.loads(line)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("type") == "assay.audit_event":
            found.append(body)
    return found


class _Sink(BaseHTTPRequestHandler):
    answers: list[int]
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def http_sink() -> Iterator[type[_Sink]]:
    handler = type("Sink", (_Sink,), {"answers": [503], "received": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.port = server.server_address[1]  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        yield sock


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Settings:
    extra: dict[str, Any] = getattr(request, "param", {})
    return settings_factory(database_url=f"sqlite:///{tmp_path / 'assay.db'}", **extra)


@pytest.mark.parametrize("settings", [{"audit_forward": "stdout"}], indirect=True)
async def test_stdout_gets_one_json_line_per_sealed_event_in_chain_order(
    app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_events(app, None, 3)
    capsys.readouterr()
    sealer: Sealer = app.state.audit_trail
    assert await sealer.chain_pending() == 3
    forwarded = _events(capsys.readouterr().out.splitlines())
    assert [e["seq"] for e in forwarded] == [1, 2, 3]
    assert all(len(e["hash"]) == 64 for e in forwarded)
    assert forwarded[1]["prev_hash"] == forwarded[0]["hash"]
    # Sealed once, forwarded once: a second pass sends nothing again.
    assert await sealer.chain_pending() == 0
    assert _events(capsys.readouterr().out.splitlines()) == []


async def test_syslog_gets_rfc5424_messages(
    settings_factory: Callable[..., Settings], tmp_path: Path, udp: socket.socket
) -> None:
    from assay.app import create_app

    port = udp.getsockname()[1]
    settings = settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}",
        audit_forward="syslog",
        audit_forward_syslog_address=f"127.0.0.1:{port}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await write_events(app, None, 2)
        await app.state.audit_trail.chain_pending()
    messages = [udp.recvfrom(65535)[0].decode() for _ in range(2)]
    assert all(m.startswith("<110>1 ") and " assay - audit - {" in m for m in messages)
    bodies = [json.loads(m.split(" assay - audit - ", 1)[1]) for m in messages]
    assert [b["seq"] for b in bodies] == [1, 2]


async def test_an_http_sink_that_fails_gets_the_lines_again_with_the_next_batch(
    settings_factory: Callable[..., Settings], tmp_path: Path, http_sink: type[_Sink]
) -> None:
    from assay.app import create_app
    from assay.outbound.service import OutboundClient, OutboundPolicy
    from tests.support.outbound import LoopbackOnlyBackend, StubResolver

    settings = settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}",
        audit_forward="http",
        audit_forward_url=f"http://127.0.0.1:{http_sink.port}/ingest",  # type: ignore[attr-defined]
        audit_forward_token=SINK_TOKEN,
        outbound_allowed_networks=["127.0.0.1/32"],
    )
    app = create_app(settings)
    app.state.audit_trail.forwarder.sink.outbound = OutboundClient(
        OutboundPolicy.from_settings(settings),
        resolver=StubResolver(),
        network_backend=LoopbackOnlyBackend(),
    )
    async with app.router.lifespan_context(app):
        sealer: Sealer = app.state.audit_trail
        await write_events(app, None, 2)
        await sealer.chain_pending()  # the sink answers 503: both lines wait
        assert sealer.forwarder is not None
        assert sealer.forwarder.backlog == 2
        await write_events(app, None, 1)
        await sealer.chain_pending()
        assert sealer.forwarder.backlog == 0
    first, second = http_sink.received
    assert second[0]["authorization"] == f"Bearer {SINK_TOKEN}"
    assert second[0]["content-type"] == "application/x-ndjson"
    assert [e["seq"] for e in _events(second[1].decode().splitlines())] == [1, 2, 3]
    assert len(_events(first[1].decode().splitlines())) == 2


def test_an_http_sink_needs_its_url(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ValidationError, match="audit_forward_url"):
        settings_factory(audit_forward="http")
