"""The rules of jobs: submit, read, list, cancel, follow, and read the result; and the
transport's life in this process (`JobService` is built once per application).

Submitting stores the input under the data directory (never in a row), scans it once,
records the job and its chunks, and sends the job to the broker after the transaction
commits. With no broker configured the job runs in this process; with one, `assay
worker` processes run it (assay.jobs.worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import AsyncBroker

from assay.core.after_commit import after_commit_await
from assay.core.csv_safe import SafeCsvWriter
from assay.core.cursors import newest_first, page_of
from assay.core.db_types import utcnow
from assay.core.errors import ValidationFailed
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import OrganisationScope, across_tenants, scope_statement, scoped
from assay.events import service as events
from assay.jobs.errors import JobNotFinished, JobNotFound, TooManyJobs
from assay.jobs.execution import JobRunner
from assay.jobs.kinds import ChunkOutcome, ChunkProcessor, JobKind
from assay.jobs.metrics import JOBS_QUEUE_DEPTH
from assay.jobs.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    ChunkState,
    Job,
    JobChunk,
    JobState,
)
from assay.jobs.queue import RUN_JOB_TASK, create_broker
from assay.jobs.schemas import BatchScoreParams, ResultFormat
from assay.jobs.store import InputFormat, InputLimits, InputRow, JobStore
from assay.predictions.service import PredictService
from assay.registry.schemas import VersionRef
from assay.settings import Settings

__all__ = [
    "BATCH_SCORE",
    "ChunkOutcome",
    "ChunkProcessor",
    "InputRow",
    "JobKind",
    "JobService",
]

log = get_logger("assay.jobs")
BATCH_SCORE = "batch_score"
RESULT_COLUMNS = ("row", "status", "score", "label", "risk", "errors", "derived")
_RESULT_BLOCK_ROWS = 1000


@dataclass(frozen=True, slots=True)
class JobFilter:
    kind: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One server-sent event: its type, id (the job's revision) and data."""

    event: str
    id: int
    data: dict[str, Any]


async def _announce(db: AsyncSession, job: Job) -> None:
    """Publish `job.succeeded`, `job.failed` or `job.cancelled` in the transaction that
    ended the job (webhooks deliver it once that commits)."""
    data: dict[str, Any] = {
        "job_id": str(job.id),
        "kind": job.kind,
        "state": job.state,
        "progress": {"done": job.done, "total": job.total, "row_errors": job.row_errors},
    }
    if job.error is not None:
        data["error"] = job.error
    await events.publish(db, org_id=job.org_id, type=f"job.{job.state}", data=data)
    log.info("job_ended", job_id=str(job.id), state=job.state, org_id=str(job.org_id))


class JobService:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        predictions: PredictService,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.predictions = predictions
        self.store = JobStore(settings.data_dir / "jobs")
        self.broker: AsyncBroker = create_broker(settings)
        # Kinds other packages add (`register_kind`); batch_score is built in.
        self.kinds: dict[str, JobKind] = {}
        self.runner = JobRunner(
            settings, sessionmaker, self.store, predictions, self._ended, self.kinds
        )
        runner = self.runner

        async def run_job(job_id: str, org_id: str) -> None:
            await runner.run(uuid.UUID(job_id), uuid.UUID(org_id))

        self.broker.register_task(run_job, task_name=RUN_JOB_TASK)
        self._sweeper: asyncio.Task[None] | None = None

    async def _ended(self, db: AsyncSession, job: Job) -> None:
        """The job has ended (in this transaction): its event, then its kind's own
        epilogue (a scan writes its findings and `scan.completed`)."""
        await _announce(db, job)
        kind = self.kinds.get(job.kind)
        if kind is not None:
            await kind.ended(db, job)

    def register_kind(self, kind: JobKind) -> None:
        """Accept and run jobs of `kind` (composed in by the application, and in workers)."""
        if kind.name == BATCH_SCORE or kind.name in self.kinds:
            msg = f"job kind {kind.name!r} is registered already"
            raise ValueError(msg)
        self.kinds[kind.name] = kind

    def kind(self, name: str) -> JobKind:
        kind = self.kinds.get(name)
        if kind is None:
            known = ", ".join([BATCH_SCORE, *sorted(self.kinds)])
            raise ValidationFailed(
                f"Unknown job kind {name!r}; known kinds: {known}.",
                errors=[{"field": "kind", "code": "unknown_kind", "message": f"one of {known}"}],
            )
        if not kind.submitted_as_job:
            raise ValidationFailed(
                f"Jobs of kind {name!r} are started through their own API, not /v1/jobs.",
                errors=[{"field": "kind", "code": "not_submittable", "message": "its own API"}],
            )
        return kind

    @property
    def runs_here(self) -> bool:
        """Whether this process runs jobs: with no broker, or as an `assay worker`."""
        return self.settings.jobs_broker is None or self.broker.is_worker_process

    async def start(self) -> None:
        await self.broker.startup()
        if self.runs_here:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="jobs-sweeper")

    async def stop(self) -> None:
        """Stop taking work; a chunk in progress stops at its next checkpoint."""
        self.runner.stopping.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.broker.shutdown()

    async def send(self, job_id: uuid.UUID, org_id: uuid.UUID) -> None:
        task = self.broker.find_task(RUN_JOB_TASK)
        if task is None:  # registered in __init__; a missing one is a programming error
            raise RuntimeError(RUN_JOB_TASK)
        await task.kiq(str(job_id), str(org_id))

    # --- submitting ---------------------------------------------------------------------

    async def submit(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        params: BatchScoreParams,
        *,
        upload: IO[bytes] | None = None,
        fmt: InputFormat = "jsonl",
    ) -> Job:
        """Check the model and the organisation's cap, store and scan the input, record
        the job and its chunks; the job is sent once the transaction commits."""
        if upload is None and params.records is None:
            raise ValidationFailed(
                "Send the records: a file, or params.records.",
                errors=[{"field": "params.records", "code": "required", "message": "required"}],
            )
        ref = VersionRef.parse(params.alias, params.version)
        await self.predictions.resolve(principal, params.model, ref)  # 404 for an unknown model
        stored = params.model_dump(exclude={"records"}, exclude_none=True)
        return await self._record(
            db, principal, BATCH_SCORE, stored, params.records, upload=upload, fmt=fmt
        )

    async def submit_kind(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        kind: JobKind,
        params: BaseModel,
        records: list[Any] | None,
        *,
        upload: IO[bytes] | None = None,
        fmt: InputFormat = "jsonl",
    ) -> Job:
        """`submit` for a kind another package added: its own check, then the same
        storage, chunks and sending."""
        if upload is None and records is None:
            raise ValidationFailed(
                "Send the rows: a file, or params.records.",
                errors=[{"field": "params.records", "code": "required", "message": "required"}],
            )
        await kind.check(principal, params)
        stored = params.model_dump(exclude={"records"}, exclude_none=True)
        return await self._record(db, principal, kind.name, stored, records, upload=upload, fmt=fmt)

    async def _record(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        kind: str,
        stored: dict[str, Any],
        records: list[Any] | None,
        *,
        upload: IO[bytes] | None,
        fmt: InputFormat,
    ) -> Job:
        await self._check_capacity(db, principal)
        job_id = uuid.uuid4()
        if upload is None:
            text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records or [])
            upload, fmt = io.BytesIO(text.encode()), "jsonl"
        limits = InputLimits(
            self.settings.jobs_max_input_bytes,
            self.settings.jobs_max_input_rows,
            self.settings.jobs_max_input_columns,
        )
        scanned = await asyncio.to_thread(
            self.store.save_input, job_id, fmt, upload, limits, self.settings.jobs_chunk_rows
        )
        if scanned.rows == 0:
            self.store.remove(job_id)
            raise ValidationFailed(
                "The input has no rows.",
                errors=[{"field": "file", "code": "empty", "message": "no rows"}],
            )
        stored.update(format=fmt, header=scanned.header, offsets=scanned.chunk_offsets)
        job = Job(
            id=job_id,
            org_id=principal.org_id,
            kind=kind,
            state=JobState.QUEUED,
            params=stored,
            total=scanned.rows,
            submitted_by_kind=principal.kind,
            submitted_by=principal.actor_id,
            input_ref=f"{job_id.hex}/input.{fmt}",
            result_ref=f"{job_id.hex}/results",
        )
        db.add(job)
        size = self.settings.jobs_chunk_rows
        for number in range(math.ceil(scanned.rows / size)):
            first = number * size
            db.add(
                JobChunk(
                    org_id=principal.org_id,
                    job_id=job_id,
                    number=number,
                    first_row=first,
                    row_count=min(size, scanned.rows - first),
                )
            )
        await db.flush()
        # One message per chunk, so that as many workers as there are chunks join in.
        chunks = math.ceil(scanned.rows / size)
        after_commit_await(db, lambda: self._send_many(job_id, principal.org_id, chunks))
        return job

    async def _send_many(self, job_id: uuid.UUID, org_id: uuid.UUID, count: int) -> None:
        for _ in range(count):
            await self.send(job_id, org_id)

    async def _check_capacity(self, db: AsyncSession, principal: OrgPrincipal) -> None:
        active = (
            await db.execute(
                scoped(principal, Job)
                .with_only_columns(func.count())
                .where(Job.state.in_(list(ACTIVE_STATES)))
            )
        ).scalar_one()
        cap = self.settings.jobs_max_concurrent_per_org
        if active >= cap:
            raise TooManyJobs(
                f"The organisation has {active} queued or running jobs; at most {cap}.",
                headers={"Retry-After": "5"},
            )

    # --- reading ------------------------------------------------------------------------

    async def get(self, db: AsyncSession, principal: OrgPrincipal, job_id: uuid.UUID) -> Job:
        job = (
            await db.execute(scoped(principal, Job).where(Job.id == job_id))
        ).scalar_one_or_none()
        if job is None:
            raise JobNotFound("No such job.")
        return job

    async def list_jobs(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        filters: JobFilter,
        *,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Job], str | None]:
        """One page of the organisation's jobs, newest first, and the next page's cursor."""
        statement = scoped(principal, Job)
        if filters.kind is not None:
            statement = statement.where(Job.kind == filters.kind)
        if filters.state is not None:
            statement = statement.where(Job.state == filters.state)
        if filters.since is not None:
            statement = statement.where(Job.created_at >= filters.since)
        if filters.until is not None:
            statement = statement.where(Job.created_at < filters.until)
        statement = newest_first(statement, Job, cursor, limit)
        return page_of(list((await db.execute(statement)).scalars()), limit)

    # --- cancelling ---------------------------------------------------------------------

    async def cancel(self, db: AsyncSession, principal: OrgPrincipal, job_id: uuid.UUID) -> Job:
        """A queued job is cancelled at once; a running one stops at its next checkpoint."""
        job = await self.get(db, principal, job_id)
        if job.state == JobState.QUEUED:
            now = utcnow()
            cancelled = await db.execute(
                scope_statement(
                    principal,
                    update(Job)
                    .where(Job.id == job_id, Job.state == JobState.QUEUED)
                    .values(
                        state=JobState.CANCELLED,
                        cancel_requested=True,
                        partial=True,
                        finished_at=now,
                        updated_at=now,
                        revision=Job.revision + 1,
                    ),
                    Job,
                )
            )
            if cancelled.rowcount == 1:  # type: ignore[attr-defined]
                await db.execute(
                    scope_statement(
                        principal,
                        update(JobChunk)
                        .where(JobChunk.job_id == job_id, JobChunk.state == ChunkState.PENDING)
                        .values(state=ChunkState.CANCELLED),
                        JobChunk,
                    )
                )
                await db.refresh(job)
                await self._ended(db, job)
                return job
            await db.refresh(job)
        if job.state == JobState.RUNNING and not job.cancel_requested:
            await db.execute(
                scope_statement(
                    principal,
                    update(Job)
                    .where(Job.id == job_id, Job.state == JobState.RUNNING)
                    .values(cancel_requested=True, revision=Job.revision + 1, updated_at=utcnow()),
                    Job,
                )
            )
            await db.refresh(job)
        return job

    # --- following ----------------------------------------------------------------------

    async def events(
        self, principal: OrgPrincipal, job_id: uuid.UUID, after: int | None
    ) -> AsyncIterator[JobEvent]:
        """The job's changes as they happen (after revision `after`), then `done`."""
        last_revision = -1 if after is None else after
        last_state: str | None = None
        while True:
            async with self.sessionmaker() as db:
                job = await self.get(db, principal, job_id)
            body = _event_data(job)
            if job.revision > last_revision:
                kind = "state" if job.state != last_state and last_state is not None else "progress"
                if last_state is None and after is None:
                    kind = "state"
                yield JobEvent(kind, job.revision, body)
                last_revision, last_state = job.revision, job.state
            last_state = job.state
            if job.state in TERMINAL_STATES:
                yield JobEvent("done", job.revision, body)
                return
            await asyncio.sleep(self.settings.jobs_events_poll_seconds)

    # --- the result ---------------------------------------------------------------------

    async def result(
        self, db: AsyncSession, principal: OrgPrincipal, job_id: uuid.UUID
    ) -> tuple[Job, list[tuple[int, int]]]:
        """The finished job and the committed row ranges of its chunks."""
        job = await self.get(db, principal, job_id)
        if job.state not in TERMINAL_STATES:
            raise JobNotFinished(f"The job is {job.state}; its result is ready when it ends.")
        chunks = (
            await db.execute(scoped(principal, JobChunk).where(JobChunk.job_id == job_id))
        ).scalars()
        return job, [(c.first_row, c.checkpoint) for c in chunks]

    def render_result(
        self, job: Job, ranges: list[tuple[int, int]], fmt: ResultFormat
    ) -> Iterator[str]:
        """The result rows as CSV (formula-neutralised) or JSON lines, in blocks; blocking."""
        rows = self.store.committed_results(job.id, ranges)
        buffer = io.StringIO()
        writer = SafeCsvWriter(buffer)
        kind = self.kinds.get(job.kind)
        if fmt == "csv":
            writer.writerow(RESULT_COLUMNS if kind is None else kind.csv_columns)
        for count, row in enumerate(rows, start=1):
            if fmt == "csv":
                writer.writerow(_batch_csv_row(row) if kind is None else kind.csv_row(row))
            else:
                buffer.write(json.dumps(row, separators=(",", ":")))
                buffer.write("\n")
            if count % _RESULT_BLOCK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    # --- recovery -----------------------------------------------------------------------

    async def sweep(self) -> int:
        """Send again every active job with a chunk whose lease expired, or that nobody
        has touched for a lease period (its message lost); return how many."""
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.jobs_lease_seconds)
        async with self.sessionmaker() as db, db.begin():
            expired = (
                await db.execute(
                    across_tenants(
                        JobChunk.__table__.select()
                        .with_only_columns(JobChunk.job_id, JobChunk.org_id)
                        .where(
                            JobChunk.state == ChunkState.RUNNING, JobChunk.lease_expires_at < now
                        )
                        .distinct(),
                        "the sweeper recovers every organisation's abandoned chunks",
                    )
                )
            ).all()
            idle = (
                await db.execute(
                    across_tenants(
                        Job.__table__.select()
                        .with_only_columns(Job.id, Job.org_id)
                        .where(Job.state.in_(list(ACTIVE_STATES)), Job.updated_at < stale),
                        "the sweeper resends every organisation's idle jobs",
                    )
                )
            ).all()
            # In one order in every process, so two sweepers never wait on each other.
            found = sorted({(row[0], row[1]) for row in [*expired, *idle]})
            for job_id, org_id in found:
                await db.execute(
                    scope_statement(
                        OrganisationScope(org_id),
                        update(Job).where(Job.id == job_id).values(updated_at=now),
                        Job,
                    )
                )
        for job_id, org_id in found:
            await self.send(job_id, org_id)
        await self.measure_queue()
        return len(found)

    async def measure_queue(self) -> int:
        """Count the chunks waiting for a worker (every organisation) into the metric."""
        async with self.sessionmaker() as db:
            waiting = (
                await db.execute(
                    across_tenants(
                        select(func.count())
                        .select_from(JobChunk)
                        .where(JobChunk.state == ChunkState.PENDING),
                        "the queue depth counts every organisation's waiting chunks",
                    )
                )
            ).scalar_one()
        JOBS_QUEUE_DEPTH.set(waiting)
        return int(waiting)

    async def _sweep_forever(self) -> None:
        interval = max(self.settings.jobs_lease_seconds / 4, 0.05)
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("jobs_sweep_failed")
            await asyncio.sleep(interval)


def _batch_csv_row(row: dict[str, Any]) -> list[Any]:
    return [
        row["row"],
        row["status"],
        row["score"],
        row["label"],
        row["risk"],
        "" if row["errors"] is None else json.dumps(row["errors"]),
        "" if row["derived"] is None else json.dumps(row["derived"]),
    ]


def _event_data(job: Job) -> dict[str, Any]:
    data: dict[str, Any] = {
        "job_id": str(job.id),
        "state": job.state,
        "progress": {"done": job.done, "total": job.total, "row_errors": job.row_errors},
        "cancel_requested": job.cancel_requested,
    }
    if job.error is not None:
        data["error"] = job.error
    return data
