"""Provider metrics: every call's outcome and latency, and the breakers' state."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROVIDER_CALLS = Counter(
    "assay_provider_calls_total",
    "Provider calls by provider and status (ok, no_data, timeout, error, circuit_open, "
    "rate_limited); answers served from the cache are status cached.",
    ["provider", "status"],
)
PROVIDER_LATENCY = Histogram(
    "assay_provider_call_duration_seconds",
    "Time a provider took to answer (calls that reached it).",
    ["provider"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# 0 closed, 1 half open, 2 open: as this process last saw it, for any organisation.
BREAKER_STATE = Gauge(
    "assay_circuit_breaker_state",
    "Circuit breaker of each provider as this process last saw it: 0 closed, 1 half open, 2 open.",
    ["breaker"],
)
