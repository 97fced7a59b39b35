"""OpenTelemetry export over real OTLP/HTTP, and the Sentry event scrubber."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from sqlalchemy import text

from assay.app import create_app
from assay.core.db import DbSession
from assay.core.logging import REDACTED
from assay.core.sentry_reporting import scrub_sentry_event
from assay.settings import Settings

TRACES_PATH = "/v1/traces"


class OtlpReceiver:
    """A minimal OTLP/HTTP collector: keeps every ExportTraceServiceRequest it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.bad_paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                if self.path != TRACES_PATH:
                    receiver.bad_paths.append(self.path)
                    self.send_response(404)
                    self.end_headers()
                    return
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                receiver.requests.append(message)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{TRACES_PATH}"

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """Every received span with the attributes of the resource that sent it."""
        found: list[tuple[dict[str, Any], Span]] = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found.extend((resource, span) for span in scope_spans.spans)
        return found


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(attributes: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in attributes}


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(timeout=5)


async def test_requests_and_queries_are_exported_as_one_trace(
    settings_factory: Callable[..., Settings], database_url: str, otlp_receiver: OtlpReceiver
) -> None:
    settings = settings_factory(
        database_url=database_url, otel_enabled=True, otel_endpoint=otlp_receiver.endpoint
    )
    app = create_app(settings)

    @app.get("/traced/{item}")
    async def traced(item: int, session: DbSession) -> dict[str, int]:
        answer = await session.scalar(text("SELECT 41 + 1"))
        return {"item": item, "answer": int(answer or 0)}

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            probe = await http.get("/readyz")
            response = await http.get("/traced/7")
        assert probe.status_code == 200
        assert response.json() == {"item": 7, "answer": 42}
        # Nothing is exported before the lifespan ends: the batch is flushed on shutdown.

    assert otlp_receiver.bad_paths == []
    spans = otlp_receiver.spans()
    assert spans, "the OTLP receiver got no spans"
    assert {resource.get("service.name") for resource, _ in spans} == {"assay"}

    servers = [span for _, span in spans if span.kind == Span.SPAN_KIND_SERVER]
    assert len(servers) == 1, f"expected only the /traced request, got {[s.name for s in servers]}"
    server = servers[0]
    assert server.name == "GET /traced/{item}"  # the route template, not the raw path
    server_attributes = _attributes(server.attributes)
    assert server_attributes["http.route"] == "/traced/{item}"
    assert "/traced/7" not in server.name

    trace = [span for _, span in spans if span.trace_id == server.trace_id]
    database_spans = [
        span
        for span in trace
        if span.kind == Span.SPAN_KIND_CLIENT
        and "SELECT 41 + 1" in str(_attributes(span.attributes).get("db.statement", ""))
    ]
    assert database_spans, f"no SQLAlchemy span in the request's trace: {[s.name for s in trace]}"
    # Probes are not traced at all, so their queries start no trace of their own either.
    assert all(
        "readyz" not in span.name and "readyz" not in str(_attributes(span.attributes))
        for _, span in spans
    )


def test_sentry_scrubber_redacts_credentials_and_drops_bodies() -> None:
    event: dict[str, Any] = {
        "request": {
            "url": "https://assay.example/v1/scores",
            "method": "POST",
            "headers": {
                "Authorization": "Bearer header-token",
                "Cookie": "session=cookie-value",
                "X-Api-Key": "key-value",
                "Proxy-Authorization": "Basic proxy-value",
                "X-CSRF-Token": "csrf-value",
                "Accept": "application/json",
            },
            "data": {"password": "body-password"},
            "cookies": {"session": "cookie-value"},
            "query_string": "token=query-token",
        },
        "extra": {"db_password": "extra-password", "attempt": 3},
        "contexts": {"settings": {"session_secret": "context-key", "region": "eu"}},
    }

    scrubbed = scrub_sentry_event(event, {})

    request = scrubbed["request"]
    assert "data" not in request
    assert "cookies" not in request
    assert "query_string" not in request
    assert request["headers"] == {
        "Authorization": REDACTED,
        "Cookie": REDACTED,
        "X-Api-Key": REDACTED,
        "Proxy-Authorization": REDACTED,
        "X-CSRF-Token": REDACTED,
        "Accept": "application/json",
    }
    assert request["url"] == "https://assay.example/v1/scores"
    assert scrubbed["extra"] == {"db_password": REDACTED, "attempt": 3}
    assert scrubbed["contexts"] == {"settings": {"session_secret": REDACTED, "region": "eu"}}
    for leaked in ("header-token", "cookie-value", "key-value", "proxy-value", "csrf-value"):
        assert leaked not in repr(scrubbed)
    for leaked in ("body-password", "query-token", "extra-password", "context-key"):
        assert leaked not in repr(scrubbed)
