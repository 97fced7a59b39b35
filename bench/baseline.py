"""The baseline: the same model called directly in this process, no HTTP and no guards.

Two baselines, each driven by N threads (N = the level's connections):

- ``runtime``: the ONNX/LightGBM runtime's own predict on a prepared 1-row matrix;
- ``scorer``: Assay's `Scorer.score_batch` on one record (validation, derived fields,
  vectorising, the runtime and the bands), i.e. everything but the service around it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from loadgen import LoadResult

from assay.engine.ml_model import MLModel
from assay.engine.results import ValidatedRecord
from assay.engine.scorer import Scorer


def measure(
    calls: Sequence[Callable[[], object]], *, threads: int, seconds: float, label: str
) -> LoadResult:
    """Call `calls` in rotation from `threads` threads for `seconds`; per-call latencies."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def worker(slot: int) -> None:
        record = latencies[slot]
        i = slot
        start.wait()
        while True:
            began = time.perf_counter()
            if began >= deadline:
                return
            calls[i % len(calls)]()
            record.append(time.perf_counter() - began)
            i += 1

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for thread in pool:
        thread.start()
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for slot in latencies for x in slot)

    def pct(p: float) -> float:
        return every[min(len(every) - 1, int(len(every) * p))] * 1000

    return LoadResult(
        connections=threads,
        requests=len(every),
        seconds=elapsed,
        p50_ms=pct(0.5),
        p90_ms=pct(0.9),
        p99_ms=pct(0.99),
        p999_ms=pct(0.999),
        max_ms=every[-1] * 1000,
        errors=0,
        tool=label,
    )


def runtime_calls(scorer: Scorer, records: Sequence[dict[str, Any]]) -> list[Callable[[], object]]:
    engine = scorer.engine
    if not isinstance(engine, MLModel):
        raise TypeError(f"{scorer.name} is not an ML model")
    calls: list[Callable[[], object]] = []
    for row in scorer.validate(records):
        if not isinstance(row, ValidatedRecord):
            raise TypeError(f"a bench record is invalid: {row}")
        matrix = engine.vectorizer.transform([row.values])
        calls.append(lambda m=matrix: engine.runtime.predict(m))
    return calls


def scorer_calls(scorer: Scorer, records: Sequence[dict[str, Any]]) -> list[Callable[[], object]]:
    return [lambda r=record: scorer.score_batch([r], explain=False) for record in records]
