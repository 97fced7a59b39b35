"""Adaptive micro-batching: fewer model calls than requests, each result back to its request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from assay.engine.base import EngineOutcome, EngineScore, ScoringEngine
from assay.engine.results import ErrorCode, FieldError, PredictionResult, RowError
from assay.engine.schema.definition import FieldSpec
from assay.engine.schema.input_schema import compile_schema
from assay.engine.scorer import Scorer
from assay.predictions.batcher import MicroBatcher
from assay.predictions.threads import ScoringThreads
from tests.support.models import auth, register_rules_model

SCHEMA = compile_schema({"fields": [{"name": "amount", "type": "number", "minimum": 0}]})
POISON = 666.0  # the engine raises for this amount
UNSCORABLE = 777.0  # the engine refuses this amount as a row error


class RecordingEngine:
    """Scores amount / 1000, records every call's batch size, and can hold calls at a gate."""

    kind = "rules"

    def __init__(self, gate: threading.Event | None = None, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.gate = gate
        self.delay = delay
        self._called = threading.Condition()

    @property
    def fields(self) -> Mapping[str, FieldSpec]:
        return SCHEMA.fields

    def score(
        self, rows: Sequence[Mapping[str, Any]], *, explain: bool = True
    ) -> list[EngineOutcome]:
        with self._called:
            self.calls.append(len(rows))
            self._called.notify_all()
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.delay:
            time.sleep(self.delay)
        if any(row["amount"] == POISON for row in rows):
            raise RuntimeError("the engine cannot score a poisoned row")
        return [
            FieldError("amount", ErrorCode.SCORING_FAILED, "unscorable")
            if row["amount"] == UNSCORABLE
            else EngineScore(row["amount"] / 1000, None)
            for row in rows
        ]

    async def called(self, times: int) -> None:
        """Return once the engine has been called `times` times (calls run in threads)."""

        def wait() -> bool:
            with self._called:
                return self._called.wait_for(lambda: len(self.calls) >= times, timeout=30)

        assert await asyncio.to_thread(wait)


def scorer_with(engine: ScoringEngine) -> Scorer:
    return Scorer(schema=SCHEMA, engine=engine, name="recording")


def batcher(max_size: int = 64, max_wait_ms: float = 2.0) -> MicroBatcher:
    return MicroBatcher(max_size=max_size, max_wait_ms=max_wait_ms, threads=ScoringThreads(4))


async def score_one(
    batch: MicroBatcher, scorer: Scorer, amount: float
) -> PredictionResult | RowError:
    [checked] = scorer.validate([{"amount": amount}])
    assert not isinstance(checked, RowError)
    return await batch.score(scorer, checked, explain=False)


def batch_sizes() -> tuple[float, float]:
    """(model calls, records) the micro-batcher has made so far, from its histogram."""
    calls = REGISTRY.get_sample_value("assay_predict_batch_size_count") or 0.0
    records = REGISTRY.get_sample_value("assay_predict_batch_size_sum") or 0.0
    return calls, records


async def test_concurrent_requests_share_model_calls_and_get_their_own_results() -> None:
    engine = RecordingEngine(delay=0.02)
    scorer = scorer_with(engine)
    batch = batcher()
    calls_before, records_before = batch_sizes()
    amounts = [float(i) for i in range(50)]
    results = await asyncio.gather(*(score_one(batch, scorer, a) for a in amounts))
    assert sum(engine.calls) == 50
    assert len(engine.calls) < 50
    for amount, result in zip(amounts, results, strict=True):
        assert isinstance(result, PredictionResult)
        assert result.score == amount / 1000
        assert result.index == 0  # each request's own index, not its place in the batch
    calls_after, records_after = batch_sizes()
    assert records_after - records_before == 50
    assert calls_after - calls_before == len(engine.calls)


async def test_an_idle_model_scores_at_once_without_waiting_for_company() -> None:
    engine = RecordingEngine()
    scorer = scorer_with(engine)
    # A wait this long would hang the test if a lone record waited for others.
    batch = batcher(max_wait_ms=600_000)
    result = await asyncio.wait_for(score_one(batch, scorer, 5.0), timeout=30)
    assert isinstance(result, PredictionResult)
    assert engine.calls == [1]


async def test_records_collect_while_a_batch_runs_and_respect_max_size() -> None:
    gate = threading.Event()
    engine = RecordingEngine(gate=gate)
    scorer = scorer_with(engine)
    batch = batcher(max_size=4, max_wait_ms=600_000)
    first = asyncio.create_task(score_one(batch, scorer, 1.0))
    await engine.called(1)
    rest = [asyncio.create_task(score_one(batch, scorer, float(i))) for i in range(2, 12)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, *rest), timeout=30)
    assert engine.calls[0] == 1
    assert max(engine.calls) <= 4
    assert sum(engine.calls) == 11
    assert len(engine.calls) < 11
    assert [r.score for r in results if isinstance(r, PredictionResult)] == [
        i / 1000 for i in (1, *range(2, 12))
    ]


async def test_max_wait_sends_waiting_records_beside_a_slow_batch() -> None:
    gate = threading.Event()
    engine = RecordingEngine(gate=gate)
    scorer = scorer_with(engine)
    batch = batcher(max_size=64, max_wait_ms=1.0)
    slow = asyncio.create_task(score_one(batch, scorer, 1.0))
    await engine.called(1)
    waiting = asyncio.create_task(score_one(batch, scorer, 2.0))
    # The first batch is held; the second record must not wait for it beyond max_wait.
    await engine.called(2)
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(slow, waiting), timeout=30)
    assert engine.calls == [1, 1]
    assert [r.score for r in results if isinstance(r, PredictionResult)] == [0.001, 0.002]


async def test_one_failing_row_fails_only_its_own_request() -> None:
    engine = RecordingEngine(delay=0.02)
    scorer = scorer_with(engine)
    batch = batcher()
    amounts = [1.0, 2.0, POISON, 3.0, UNSCORABLE, 4.0, 5.0]
    outcomes = await asyncio.gather(
        *(score_one(batch, scorer, a) for a in amounts), return_exceptions=True
    )
    for amount, outcome in zip(amounts, outcomes, strict=True):
        if amount == POISON:
            assert isinstance(outcome, RuntimeError)
        elif amount == UNSCORABLE:
            assert isinstance(outcome, RowError)
            assert outcome.errors[0].code == ErrorCode.SCORING_FAILED
        else:
            assert isinstance(outcome, PredictionResult)
            assert outcome.score == amount / 1000


async def test_max_size_one_turns_merging_off() -> None:
    engine = RecordingEngine(delay=0.01)
    scorer = scorer_with(engine)
    batch = batcher(max_size=1)
    results = await asyncio.gather(*(score_one(batch, scorer, float(i)) for i in range(8)))
    assert engine.calls == [1] * 8
    assert [r.score for r in results if isinstance(r, PredictionResult)] == [
        i / 1000 for i in range(8)
    ]


async def test_a_cancelled_request_does_not_disturb_its_batch() -> None:
    gate = threading.Event()
    engine = RecordingEngine(gate=gate)
    scorer = scorer_with(engine)
    batch = batcher()
    first = asyncio.create_task(score_one(batch, scorer, 1.0))
    await engine.called(1)
    leaving = asyncio.create_task(score_one(batch, scorer, 2.0))
    staying = asyncio.create_task(score_one(batch, scorer, 3.0))
    await asyncio.sleep(0.01)
    leaving.cancel()
    gate.set()
    done = await asyncio.wait_for(asyncio.gather(first, staying), timeout=30)
    assert [r.score for r in done if isinstance(r, PredictionResult)] == [0.001, 0.003]
    assert leaving.cancelled()


# --- through the API ---------------------------------------------------------------------


class SlowEngine:
    """Wraps a real engine and holds each call a little, so concurrent requests overlap."""

    def __init__(self, inner: ScoringEngine, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.kind = inner.kind

    @property
    def fields(self) -> Mapping[str, FieldSpec]:
        return self.inner.fields

    def score(
        self, rows: Sequence[Mapping[str, Any]], *, explain: bool = True
    ) -> list[EngineOutcome]:
        time.sleep(self.delay)
        return self.inner.score(rows, explain=explain)


@pytest.fixture
async def slowed_rules_model(client: httpx.AsyncClient, owner_token: str, app: FastAPI) -> Scorer:
    await register_rules_model(client, owner_token)
    [loaded] = app.state.registry.cache.loaded()
    scorer: Scorer = loaded.scorer
    reference = Scorer(schema=scorer.schema, engine=scorer.engine, bands=scorer.bands)
    scorer.engine = SlowEngine(scorer.engine, delay=0.02)
    return reference


async def test_concurrent_api_requests_are_batched_recorded_and_answered_correctly(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, slowed_rules_model: Scorer
) -> None:
    records = [
        {
            "amount": float(10 * i + (1000 if i % 3 == 0 else 0)),
            "country": ["US", "GB", "DE"][i % 3],
        }
        for i in range(40)
    ]
    calls_before, records_before = batch_sizes()

    async def predict(index: int) -> httpx.Response:
        return await client.post(
            "/v1/models/fraud-rules/predict?explain=false",
            json={"record": records[index]},
            headers={**auth(owner_token), "x-request-id": f"batch-test-{index:04d}"},
        )

    responses = await asyncio.gather(*(predict(i) for i in range(len(records))))
    calls_after, records_after = batch_sizes()
    assert records_after - records_before == len(records)
    assert calls_after - calls_before < len(records)
    for record, response in zip(records, responses, strict=True):
        assert response.status_code == 200, response.text
        [result] = response.json()["results"]
        expected = slowed_rules_model.score_one(record, explain=False)
        assert isinstance(expected, PredictionResult)
        assert result["score"] == expected.score
        assert result["label"] == expected.label
    await app.state.predictions.recorder.flush()
    page = await client.get(
        "/v1/predictions?model=fraud-rules&limit=100", headers=auth(owner_token)
    )
    by_request = {item["request_id"]: item for item in page.json()["items"]}
    assert len(by_request) == len(records)
    for index, record in enumerate(records):
        item = by_request[f"batch-test-{index:04d}"]
        assert item["inputs"] == record
        assert item["score"] == responses[index].json()["results"][0]["score"]


async def test_invalid_records_fail_alone_among_concurrent_valid_ones(
    client: httpx.AsyncClient, owner_token: str, slowed_rules_model: Scorer
) -> None:
    records: list[dict[str, Any]] = [
        {"amount": -1.0, "country": "US"} if i % 4 == 0 else {"amount": float(i), "country": "GB"}
        for i in range(24)
    ]
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/models/fraud-rules/predict",
                json={"record": record},
                headers=auth(owner_token),
            )
            for record in records
        )
    )
    for record, response in zip(records, responses, strict=True):
        if record["amount"] < 0:
            assert response.status_code == 422
            assert response.json()["errors"][0]["field"] == "records.0.amount"
        else:
            assert response.status_code == 200, response.text
            assert response.json()["results"][0]["explanation"] is not None


async def test_scoring_threads_work_again_after_a_stop() -> None:
    threads = ScoringThreads(2)
    assert await threads.run(lambda: 1 + 1) == 2
    threads.close()
    # An application whose lifespan stops and starts again scores with fresh threads.
    assert await threads.run(lambda: 2 + 2) == 4
    threads.close()
