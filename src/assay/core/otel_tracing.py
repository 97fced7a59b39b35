"""OpenTelemetry tracing over OTLP/HTTP: the `otel` extra's packages, imported at the top.

Only `assay.core.tracing.start_tracing` imports this module, when `ASSAY_OTEL_ENABLED` is
on; nothing else may, so that an install without `assay[otel]` starts.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from assay import __version__
from assay.settings import Settings

# Health probes and scrapes would drown the useful traces.
_UNTRACED_URLS = "livez,readyz,metrics"


class OtelTracing:
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
) -> OtelTracing:
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
    return OtelTracing(provider)
