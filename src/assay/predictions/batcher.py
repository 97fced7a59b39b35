"""Adaptive micro-batching: concurrent single-record predictions share one model call.

Each (loaded model version, explain) pair has a queue. A record that arrives while
nothing of that version is being scored is sent to the model at once, alone: an idle
model never makes anyone wait. Records that arrive while a batch is being scored
collect in the queue and go together, in one vectorised `Scorer.score_validated`
call, as soon as that batch is done. Two bounds keep the collecting honest:

- ``max_size``: a queue that reaches it is sent at once, even while a batch runs;
- ``max_wait``: no record waits longer than this for a running batch to finish; after
  it, the waiting records go as their own batch, next to the running one.

Batch sizes therefore follow the load: one at a time when traffic is light, larger as
requests overlap, with the model never idle while work is waiting. Model calls run in
the caller's bounded thread pool (`ScoringThreads`), never on the event loop.
All queue state is touched only on the event loop, so it needs no locks.

One record's failure never fails its neighbours: rows the engine cannot score come
back as their own `RowError`, and if the engine raises for a batch, each of its rows is
scored again alone, so the exception reaches only the request whose row caused it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Histogram

from assay.engine.results import PredictionResult, RowError, ValidatedRecord
from assay.engine.scorer import Scorer
from assay.predictions.threads import ScoringThreads

BATCH_SIZE = Histogram(
    "assay_predict_batch_size",
    "Records scored per model call made by the micro-batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)

Outcome = PredictionResult | RowError


@dataclass(slots=True)
class _Waiting:
    row: ValidatedRecord
    future: asyncio.Future[Outcome]


@dataclass(slots=True, eq=False)
class _Queue:
    scorer: Scorer
    explain: bool
    waiting: list[_Waiting] = field(default_factory=list)
    running: int = 0
    timer: asyncio.TimerHandle | None = None


def _score_rows(
    scorer: Scorer, rows: Sequence[ValidatedRecord], explain: bool
) -> list[Outcome | Exception]:
    """Runs in a worker thread: one call for the batch, one per row only if it raised."""
    try:
        return list(scorer.score_validated(rows, explain=explain))
    except Exception:
        if len(rows) == 1:
            raise
    outcomes: list[Outcome | Exception] = []
    for row in rows:
        try:
            outcomes.extend(scorer.score_validated([row], explain=explain))
        except Exception as exc:  # noqa: BLE001 - handed to the one request it belongs to
            outcomes.append(exc)
    return outcomes


class MicroBatcher:
    """Merges concurrent `score` calls for the same scorer into vectorised model calls."""

    def __init__(self, *, max_size: int, max_wait_ms: float, threads: ScoringThreads) -> None:
        self.max_size = max_size
        self.max_wait = max_wait_ms / 1000
        self._threads = threads
        self._queues: dict[tuple[Scorer, bool], _Queue] = {}
        # Strong references: the event loop keeps only weak ones to running tasks.
        self._tasks: set[asyncio.Task[None]] = set()

    async def score(self, scorer: Scorer, row: ValidatedRecord, *, explain: bool) -> Outcome:
        """Score one validated record, possibly together with others; keeps `row.index`."""
        key = (scorer, explain)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(scorer, explain)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        queue.waiting.append(_Waiting(row, future))
        # A batch starts when nothing runs, and for every further `max_size` waiting (a
        # runner takes its batch when it first runs, so more may join until then).
        if queue.running == 0 or len(queue.waiting) % self.max_size == 0:
            self._start(queue)
        else:
            self._arm_timer(queue)
        return await future

    def _arm_timer(self, queue: _Queue) -> None:
        if queue.timer is None and queue.waiting:
            queue.timer = asyncio.get_running_loop().call_later(
                self.max_wait, self._on_timer, queue
            )

    def _on_timer(self, queue: _Queue) -> None:
        queue.timer = None
        if queue.waiting:
            self._start(queue)

    def _start(self, queue: _Queue) -> None:
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        queue.running += 1
        task = asyncio.get_running_loop().create_task(self._drain(queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, queue: _Queue) -> None:
        """Score batches until the queue is empty; what arrives meanwhile goes next."""
        try:
            while queue.waiting:
                batch = queue.waiting[: self.max_size]
                del queue.waiting[: self.max_size]
                if len(queue.waiting) >= self.max_size:
                    self._start(queue)
                else:
                    self._arm_timer(queue)
                await self._score_batch(queue, batch)
        finally:
            queue.running -= 1
            if not queue.waiting:
                if queue.timer is not None:
                    queue.timer.cancel()
                    queue.timer = None
                if queue.running == 0:
                    # Dropped when idle, so an evicted model version is not kept alive here.
                    self._queues.pop((queue.scorer, queue.explain), None)

    async def _score_batch(self, queue: _Queue, batch: list[_Waiting]) -> None:
        # Positions in the batch become the indices the engine sees; each request gets
        # its own index back.
        rows = [
            ValidatedRecord(position, item.row.values, item.row.derived)
            for position, item in enumerate(batch)
        ]
        BATCH_SIZE.observe(len(rows))
        scorer, explain = queue.scorer, queue.explain
        try:
            outcomes = await self._threads.run(_score_rows, scorer, rows, explain)
        except BaseException as exc:
            for item in batch:
                if not item.future.done():
                    if isinstance(exc, Exception):
                        item.future.set_exception(exc)
                    else:
                        item.future.cancel()
            if isinstance(exc, Exception):
                return
            raise
        # `_score_rows` gives one outcome per row, in batch order.
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.future.done():
                continue  # the request went away (client disconnected)
            if isinstance(outcome, Exception):
                item.future.set_exception(outcome)
            else:
                item.future.set_result(dataclasses.replace(outcome, index=item.row.index))
