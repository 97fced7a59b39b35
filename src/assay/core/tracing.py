"""Opt-in tracing (OpenTelemetry over OTLP/HTTP) and error tracking (Sentry)."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import sentry_sdk
from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sqlalchemy.ext.asyncio import AsyncEngine

from assay import __version__
from assay.core.logging import REDACTED, _redact
from assay.settings import Settings

# Health probes and scrapes would drown the useful traces.
_UNTRACED_URLS = "livez,readyz,metrics"


class Tracing:
    """The tracer provider of one app and the instrumentation it switched on."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    def shutdown(self) -> None:
        SQLAlchemyInstrumentor().uninstrument()
        HTTPXClientInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()
        self.provider.shutdown()  # flushes the batch processor


def start_tracing(
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    exporter: SpanExporter | None = None,
) -> Tracing:
    resource = Resource.create(
        {"service.name": settings.otel_service_name, "service.version": __version__}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(exporter or OTLPSpanExporter(endpoint=settings.otel_endpoint))
    )
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=_UNTRACED_URLS)
    # The instrumentation declares "sqlalchemy < 2.1" and otherwise silently instruments
    # nothing; its engine events work unchanged on the 2.1 we ship (tests/core/test_tracing.py).
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    return Tracing(provider)


_SENSITIVE_HEADERS = frozenset(
    {"authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization", "x-csrf-token"}
)


def scrub_sentry_event(event: MutableMapping[str, Any], _hint: Mapping[str, Any]) -> Any:
    """Remove bodies, cookies, credentials and secret-looking values before sending."""
    request = event.get("request")
    if isinstance(request, MutableMapping):
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("query_string", None)
        headers = request.get("headers")
        if isinstance(headers, MutableMapping):
            for name in list(headers):
                if name.lower() in _SENSITIVE_HEADERS:
                    headers[name] = REDACTED
    for section in ("extra", "contexts"):
        if isinstance(event.get(section), Mapping):
            event[section] = _redact(event[section])
    return event


def start_error_tracking(settings: Settings) -> bool:
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.env.value,
        release=f"assay@{__version__}",
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=scrub_sentry_event,  # type: ignore[arg-type]
        event_scrubber=EventScrubber(
            denylist=[*DEFAULT_DENYLIST, "encryption_key", "token_signing_key", "api_key"]
        ),
        # We report unhandled errors ourselves, once; log lines are not events.
        integrations=[LoggingIntegration(event_level=None)],
    )
    return True


def report_exception(exc: BaseException, request_id: str | None = None) -> None:
    if sentry_sdk.get_client().is_active():
        with sentry_sdk.new_scope() as scope:
            if request_id:
                # Support staff search by the id a client quotes from the problem body.
                scope.set_tag("request_id", request_id)
            scope.capture_exception(exc)


def stop_error_tracking() -> None:
    client = sentry_sdk.get_client()
    if client.is_active():
        client.flush(timeout=5)
        client.close()
