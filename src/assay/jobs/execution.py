"""Running a job: take a chunk under a lease, score it a checkpoint at a time, finish.

Any number of workers may run one job: each takes the next chunk nobody holds (or whose
holder's lease expired) by a conditional UPDATE, so exactly one wins it. At every
checkpoint the worker writes the segment's result rows to the store, then, in one
transaction, moves the chunk's checkpoint (only while it still holds the lease), writes
the segment's prediction records and adds to the job's progress. A worker that dies
between the two leaves a segment file that its successor writes again, identically, and
no records: every row is in the result, and recorded, exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import and_, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.core.db_types import utcnow
from assay.core.errors import AssayError, DependencyUnavailable
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal, PrincipalKind
from assay.core.tenancy import OrganisationScope, scope_statement, scoped
from assay.engine.results import ErrorCode, FieldError, PredictionResult, RowError
from assay.jobs.errors import TransientJobError
from assay.jobs.kinds import ChunkOutcome, ChunkProcessor, JobKind
from assay.jobs.metrics import JOB_DURATION, JOBS_FINISHED
from assay.jobs.models import ACTIVE_STATES, ChunkState, Job, JobChunk, JobState
from assay.jobs.store import InputFormat, InputRow, JobStore
from assay.predictions.service import PredictService, Served
from assay.registry.errors import ModelUnavailable
from assay.registry.schemas import VersionRef
from assay.settings import Settings

log = get_logger("assay.jobs")

# Called in the transaction that ends a job (the job row already in its final state).
Announce = Callable[[AsyncSession, Job], Awaitable[None]]
# Failures worth another attempt; anything else a job cannot get past fails it at once.
TRANSIENT = (OSError, ConnectionError, TimeoutError, ModelUnavailable, DependencyUnavailable)


def _take(rows: Iterator[InputRow], count: int) -> list[InputRow]:
    return list(itertools.islice(rows, count))


class LeaseLost(Exception):
    """Another worker took the chunk over (this one was too slow); stop working on it."""


@dataclass(frozen=True, slots=True)
class Claim:
    job: Job
    chunk: JobChunk


def worker_identity() -> str:
    """Who holds a lease: host, process and a random part (a restarted process differs)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def job_principal(job: Job) -> OrgPrincipal:
    """The submitter, as far as scoring and its records need: org, kind and id."""
    return OrgPrincipal(
        kind=cast(PrincipalKind, job.submitted_by_kind),
        id=uuid.UUID(job.submitted_by),
        org_id=job.org_id,
        permissions=frozenset({"predict"}),
    )


def coerce_csv(record: object, field_types: dict[str, str]) -> object:
    """CSV cells are text: read numbers and booleans the schema declares as such (a
    cell that does not read is passed on as text, so validation reports it as predict
    would)."""
    if not isinstance(record, dict):
        return record
    typed: dict[str, Any] = {}
    for name, value in record.items():
        kind = field_types.get(name)
        typed[name] = _coerce(value, kind) if isinstance(value, str) else value
    return typed


def _coerce(value: str, kind: str | None) -> object:
    text = value.strip()
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            try:
                return int(text)
            except ValueError:
                return float(text)
    except ValueError:
        return value
    if kind == "boolean" and text.lower() in ("true", "false", "1", "0"):
        return text.lower() in ("true", "1")
    return value


def result_line(index: int, result: PredictionResult | RowError) -> str:
    if isinstance(result, PredictionResult):
        body: dict[str, Any] = {
            "row": index,
            "status": "ok",
            "score": result.score,
            "label": result.label,
            "risk": result.risk,
            "derived": dict(result.derived),
            "explanation": None if result.explanation is None else result.explanation.as_dict(),
            "errors": None,
        }
    else:
        body = {
            "row": index,
            "status": "error",
            "score": None,
            "label": None,
            "risk": None,
            "derived": None,
            "explanation": None,
            "errors": [e.as_dict() for e in result.errors],
        }
    return json.dumps(body, separators=(",", ":"), default=str)


class JobRunner:
    """Works on jobs in this process: what the broker's task calls."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: JobStore,
        predictions: PredictService,
        announce: Announce,
        kinds: Mapping[str, JobKind],
    ) -> None:
        self.settings = settings
        self.kinds = kinds
        self.sessionmaker = sessionmaker
        self.store = store
        self.predictions = predictions
        self.announce = announce
        self.identity = worker_identity()
        # Set when the process is asked to stop: the current chunk stops at its next
        # checkpoint and is released for another worker.
        self.stopping = asyncio.Event()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until no job is being worked on in this process."""
        await self._idle.wait()

    def _lease_until(self) -> Any:
        return utcnow() + timedelta(seconds=self.settings.jobs_lease_seconds)

    async def run(self, job_id: uuid.UUID, org_id: uuid.UUID) -> None:
        """Work on the job's chunks until none is left to take, then settle the job."""
        self._active += 1
        self._idle.clear()
        try:
            await self._run(job_id, OrganisationScope(org_id))
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def _run(self, job_id: uuid.UUID, scope: OrganisationScope) -> None:
        while not self.stopping.is_set():
            claim = await self._claim(scope, job_id)
            if claim is None:
                break
            try:
                await self._work(scope, claim)
            except LeaseLost:
                log.info("job_chunk_lease_lost", job_id=str(job_id), chunk=claim.chunk.number)
            except TRANSIENT as exc:
                await self._transient(scope, claim, exc)
            except AssayError as exc:
                await self._fail(scope, job_id, exc.detail)
                return
        await self.settle(scope, job_id)

    # --- taking a chunk -----------------------------------------------------------------

    @staticmethod
    async def _lock_job(
        db: AsyncSession, scope: OrganisationScope, job_id: uuid.UUID
    ) -> Job | None:
        """Lock the job's row. Every transaction that writes a job's chunks takes this lock
        first, and a cancel writes the job before its chunks: one order, so no deadlock
        (taking a chunk, then the job, deadlocked against a cancel on PostgreSQL)."""
        job: Job | None = (
            await db.execute(scoped(scope, Job).where(Job.id == job_id).with_for_update())
        ).scalar_one_or_none()
        return job

    async def _claim(self, scope: OrganisationScope, job_id: uuid.UUID) -> Claim | None:
        async with self.sessionmaker() as db, db.begin():
            job = await self._lock_job(db, scope, job_id)
            if job is None or job.state not in ACTIVE_STATES or job.cancel_requested:
                return None
            now = utcnow()
            claimable = or_(
                JobChunk.state == ChunkState.PENDING,
                and_(JobChunk.state == ChunkState.RUNNING, JobChunk.lease_expires_at < now),
            )
            candidates = (
                await db.execute(
                    scoped(scope, JobChunk)
                    .where(JobChunk.job_id == job_id, claimable)
                    .order_by(JobChunk.number)
                    .limit(8)
                )
            ).scalars()
            for chunk in list(candidates):
                taken = await db.execute(
                    scope_statement(
                        scope,
                        update(JobChunk)
                        .where(JobChunk.id == chunk.id, claimable)
                        .values(
                            state=ChunkState.RUNNING,
                            lease_owner=self.identity,
                            lease_expires_at=self._lease_until(),
                            attempts=JobChunk.attempts + 1,
                            updated_at=now,
                        ),
                        JobChunk,
                    )
                )
                if taken.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                if job.state == JobState.QUEUED:
                    started = await db.execute(
                        scope_statement(
                            scope,
                            update(Job)
                            .where(Job.id == job_id, Job.state == JobState.QUEUED)
                            .values(
                                state=JobState.RUNNING,
                                started_at=now,
                                updated_at=now,
                                revision=Job.revision + 1,
                            ),
                            Job,
                        )
                    )
                    if started.rowcount != 1:  # type: ignore[attr-defined]
                        await db.refresh(job)
                        if job.state != JobState.RUNNING:
                            await db.rollback()
                            return None
                await db.refresh(chunk)
                await db.refresh(job)
                db.expunge(chunk)
                db.expunge(job)
                log.info(
                    "job_chunk_taken",
                    job_id=str(job_id),
                    chunk=chunk.number,
                    checkpoint=chunk.checkpoint,
                    worker=self.identity,
                )
                return Claim(job, chunk)
        return None

    # --- working on it ------------------------------------------------------------------

    async def _processor(self, job: Job, principal: OrgPrincipal) -> ChunkProcessor:
        kind = self.kinds.get(job.kind)
        if kind is not None:
            return await kind.prepare(principal, job.params)
        params = job.params
        served = await self.predictions.load(
            principal, params["model"], VersionRef.parse(params.get("alias"), params.get("version"))
        )
        return _BatchScoring(self, principal, served, job)

    async def _work(self, scope: OrganisationScope, claim: Claim) -> None:
        job, chunk = claim.job, claim.chunk
        params = job.params
        principal = job_principal(job)
        processor = await self._processor(job, principal)
        fmt = cast(InputFormat, params["format"])
        checkpoint = chunk.checkpoint
        step = getattr(processor, "checkpoint_rows", None) or self.settings.jobs_checkpoint_rows
        # One pass over the chunk's rows, read a checkpoint's worth at a time (in a thread).
        rows_left = self.store.read_rows(
            job.id,
            fmt,
            params.get("header"),
            params["offsets"][chunk.number],
            chunk.first_row,
            checkpoint,
            chunk.row_count - checkpoint,
        )
        try:
            while checkpoint < chunk.row_count:
                count = min(step, chunk.row_count - checkpoint)
                rows = await asyncio.to_thread(_take, rows_left, count)
                outcome = await processor.process(rows)
                first = chunk.first_row + checkpoint
                await asyncio.to_thread(self.store.write_segment, job.id, first, outcome.lines)
                cancel = await self._commit(
                    scope,
                    job,
                    chunk,
                    checkpoint,
                    len(rows),
                    outcome,
                    last=len(rows) < count,
                )
                checkpoint += len(rows)
                if len(rows) < count:
                    checkpoint = chunk.row_count  # the file ended early: nothing more to read
                if checkpoint >= chunk.row_count:
                    return
                if cancel or self.stopping.is_set():
                    await self._release(
                        scope, chunk, ChunkState.CANCELLED if cancel else ChunkState.PENDING
                    )
                    return
        finally:
            rows_left.close()

    async def _score(
        self,
        principal: OrgPrincipal,
        served: Served,
        job: Job,
        rows: Sequence[InputRow],
    ) -> tuple[list[str], list[dict[str, Any]], int]:
        fmt = cast(InputFormat, job.params["format"])
        field_types: dict[str, str] = dict(served.scorer.schema.field_types)
        readable = [row for row in rows if row.problem is None]
        records = [
            coerce_csv(row.record, field_types) if fmt == "csv" else row.record for row in readable
        ]
        results, record_rows = (
            await self.predictions.score_unrecorded(
                principal,
                served,
                records,
                explain=bool(job.params.get("explain", False)),
                request_id=f"job:{job.id}",
            )
            if records
            else ([], [])
        )
        by_row: dict[int, PredictionResult | RowError] = {
            readable[result.index].index: result for result in results
        }
        for row in rows:
            if row.problem is not None:
                by_row[row.index] = RowError(
                    row.index, (FieldError(None, ErrorCode.TYPE, f"the row {row.problem}"),)
                )
        lines = [result_line(row.index, by_row[row.index]) for row in rows]
        errors = sum(1 for result in by_row.values() if isinstance(result, RowError))
        return lines, record_rows, errors

    async def _commit(
        self,
        scope: OrganisationScope,
        job: Job,
        chunk: JobChunk,
        checkpoint: int,
        count: int,
        outcome: ChunkOutcome,
        *,
        last: bool = False,
    ) -> bool:
        """Move the checkpoint, write the records, count progress; say whether the job was
        asked to stop."""
        # A short read means the input ended: the chunk is done with what it had.
        finished = checkpoint + count >= chunk.row_count or last
        now = utcnow()
        async with self.sessionmaker() as db, db.begin():
            await self._lock_job(db, scope, job.id)
            moved = await db.execute(
                scope_statement(
                    scope,
                    update(JobChunk)
                    .where(
                        JobChunk.id == chunk.id,
                        JobChunk.lease_owner == self.identity,
                        JobChunk.state == ChunkState.RUNNING,
                        JobChunk.checkpoint == checkpoint,
                    )
                    .values(
                        checkpoint=chunk.row_count if finished else checkpoint + count,
                        state=ChunkState.DONE if finished else ChunkState.RUNNING,
                        lease_owner=None if finished else self.identity,
                        lease_expires_at=None if finished else self._lease_until(),
                        updated_at=now,
                    ),
                    JobChunk,
                )
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost
            await outcome.write(db)
            await db.execute(
                scope_statement(
                    scope,
                    update(Job)
                    .where(Job.id == job.id)
                    .values(
                        done=Job.done + count,
                        row_errors=Job.row_errors + outcome.errors,
                        revision=Job.revision + 1,
                        updated_at=now,
                    ),
                    Job,
                )
            )
            cancel = (
                await db.execute(
                    scoped(scope, Job)
                    .with_only_columns(Job.cancel_requested)
                    .where(Job.id == job.id)
                )
            ).scalar_one()
        return bool(cancel)

    async def _release(self, scope: OrganisationScope, chunk: JobChunk, state: ChunkState) -> None:
        async with self.sessionmaker() as db, db.begin():
            await db.execute(
                scope_statement(
                    scope,
                    update(JobChunk)
                    .where(JobChunk.id == chunk.id, JobChunk.lease_owner == self.identity)
                    .values(
                        state=state, lease_owner=None, lease_expires_at=None, updated_at=utcnow()
                    ),
                    JobChunk,
                )
            )

    # --- failures -----------------------------------------------------------------------

    async def _transient(self, scope: OrganisationScope, claim: Claim, exc: BaseException) -> None:
        """Release the chunk and count the attempt; fail the job after the last one, else
        raise for the retry middleware to send the job again after a backoff."""
        log.warning("job_attempt_failed", job_id=str(claim.job.id), error=repr(exc))
        await self._release(scope, claim.chunk, ChunkState.PENDING)
        async with self.sessionmaker() as db, db.begin():
            await db.execute(
                scope_statement(
                    scope,
                    update(Job)
                    .where(Job.id == claim.job.id)
                    .values(
                        attempts=Job.attempts + 1, revision=Job.revision + 1, updated_at=utcnow()
                    ),
                    Job,
                )
            )
            attempts = (
                (await db.execute(scoped(scope, Job).where(Job.id == claim.job.id)))
                .scalar_one()
                .attempts
            )
        if attempts >= self.settings.jobs_max_attempts:
            await self._fail(scope, claim.job.id, "gave up after repeated transient failures")
            return
        raise TransientJobError(str(exc)) from exc

    async def _fail(self, scope: OrganisationScope, job_id: uuid.UUID, reason: str) -> None:
        async with self.sessionmaker() as db, db.begin():
            await self._lock_job(db, scope, job_id)
            await self._cancel_chunks(db, scope, job_id, pending_only=False)
            await self._finish(db, scope, job_id, JobState.FAILED, error=reason)

    # --- ending -------------------------------------------------------------------------

    async def settle(self, scope: OrganisationScope, job_id: uuid.UUID) -> None:
        """End the job when no chunk is left to run: succeeded, or cancelled when asked."""
        async with self.sessionmaker() as db, db.begin():
            job = await self._lock_job(db, scope, job_id)
            if job is None or job.state not in ACTIVE_STATES:
                return
            if job.cancel_requested:
                await self._cancel_chunks(db, scope, job_id, pending_only=True)
            grouped = await db.execute(
                scoped(scope, JobChunk)
                .with_only_columns(JobChunk.state, func.count())
                .where(JobChunk.job_id == job_id)
                .group_by(JobChunk.state)
            )
            counts: dict[str, int] = {str(row[0]): int(row[1]) for row in grouped}
            if counts.get(ChunkState.PENDING, 0) or counts.get(ChunkState.RUNNING, 0):
                return
            state = (
                JobState.CANCELLED if counts.get(ChunkState.CANCELLED, 0) else JobState.SUCCEEDED
            )
            await self._finish(db, scope, job_id, state)

    async def _cancel_chunks(
        self, db: AsyncSession, scope: OrganisationScope, job_id: uuid.UUID, *, pending_only: bool
    ) -> None:
        """Cancel the chunks nobody works on: pending ones, and running ones whose holder's
        lease expired (it died); with `pending_only` False, every unfinished one."""
        if pending_only:
            idle = or_(
                JobChunk.state == ChunkState.PENDING,
                and_(JobChunk.state == ChunkState.RUNNING, JobChunk.lease_expires_at < utcnow()),
            )
        else:
            idle = JobChunk.state.in_([ChunkState.PENDING, ChunkState.RUNNING])
        await db.execute(
            scope_statement(
                scope,
                update(JobChunk)
                .where(JobChunk.job_id == job_id, idle)
                .values(state=ChunkState.CANCELLED, lease_owner=None, lease_expires_at=None),
                JobChunk,
            )
        )

    async def _finish(
        self,
        db: AsyncSession,
        scope: OrganisationScope,
        job_id: uuid.UUID,
        state: JobState,
        error: str | None = None,
    ) -> None:
        now = utcnow()
        ended = await db.execute(
            scope_statement(
                scope,
                update(Job)
                .where(Job.id == job_id, Job.state.in_(list(ACTIVE_STATES)))
                .values(
                    state=state,
                    error=error,
                    partial=state != JobState.SUCCEEDED,
                    finished_at=now,
                    updated_at=now,
                    revision=Job.revision + 1,
                ),
                Job,
            )
        )
        if ended.rowcount == 1:  # type: ignore[attr-defined]
            # Read again, not from the session: the row this transaction read first may
            # predate another worker's last checkpoint (SQLite takes no snapshot for a
            # SELECT), and the event must carry the final progress.
            job = (
                await db.execute(
                    scoped(scope, Job)
                    .where(Job.id == job_id)
                    .execution_options(populate_existing=True)
                )
            ).scalar_one()
            await self.announce(db, job)
            log.info("job_finished", job_id=str(job_id), state=state.value, done=job.done)
            JOBS_FINISHED.labels(job.kind, state.value).inc()
            JOB_DURATION.labels(job.kind, state.value).observe(
                max((now - job.created_at).total_seconds(), 0.0)
            )


class _BatchScoring:
    """batch_score's chunk processor: the predict service's validation and scoring, the
    prediction records written with the checkpoint."""

    checkpoint_rows: int | None = None

    def __init__(
        self, runner: JobRunner, principal: OrgPrincipal, served: Served, job: Job
    ) -> None:
        self._runner, self._principal, self._served, self._job = runner, principal, served, job

    async def process(self, rows: Sequence[InputRow]) -> ChunkOutcome:
        lines, records, errors = await self._runner._score(
            self._principal, self._served, self._job, rows
        )
        predictions = self._runner.predictions

        async def write(db: AsyncSession) -> None:
            await predictions.write_records(db, records)

        return ChunkOutcome(lines, errors, write)
