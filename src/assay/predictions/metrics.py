"""Per-model metrics: which model is slow, failing or fed large batches.

Labels are the model's name and version number. Names come from tenants, so the
number of series is capped per process (`metrics_model_series_limit`): the first
models seen get their own series, later ones share `model="other", version="other"`.
Only models that resolved are ever labelled, so a request for a name that does not
exist cannot mint a series. Two organisations with a model of the same name share its
series; the metrics describe the platform's load, the prediction records each
organisation's.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Histogram

OTHER = "other"

MODEL_REQUESTS = Counter(
    "assay_model_requests",
    "Predict calls for a resolved model version, by outcome: ok, invalid (a strict "
    "request with invalid records), unavailable (the version would not load) or error.",
    ["model", "version", "outcome"],
)
MODEL_LATENCY = Histogram(
    "assay_model_request_duration_seconds",
    "Time to validate and score one predict call's records (records are written later).",
    ["model", "version"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
MODEL_RECORDS = Histogram(
    "assay_model_request_records",
    "Records per predict call.",
    ["model", "version"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000),
)
MODEL_INVALID_RECORDS = Counter(
    "assay_model_invalid_records",
    "Records refused by a model's input schema.",
    ["model", "version"],
)


class ModelSeries:
    """Chooses the labels for a (model, version), keeping the series count bounded."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: set[tuple[str, str]] = set()
        # Scoring threads and the event loop both record; the set must not overshoot.
        self._lock = threading.Lock()

    def labels(self, model: str, version: int) -> tuple[str, str]:
        key = (model, str(version))
        if key in self._known:
            return key
        with self._lock:
            if key in self._known:
                return key
            if len(self._known) >= self._limit:
                return (OTHER, OTHER)
            self._known.add(key)
            return key

    def observe(
        self, model: str, version: int, *, outcome: str, seconds: float, records: int, invalid: int
    ) -> None:
        labels = self.labels(model, version)
        MODEL_REQUESTS.labels(*labels, outcome).inc()
        if outcome in {"ok", "invalid"}:
            MODEL_LATENCY.labels(*labels).observe(seconds)
            MODEL_RECORDS.labels(*labels).observe(records)
        if invalid:
            MODEL_INVALID_RECORDS.labels(*labels).inc(invalid)
