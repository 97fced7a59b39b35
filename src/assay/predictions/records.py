"""Prediction records: every scoring, kept off the hot path and flushed in batches.

Records collect in memory and are written every `prediction_flush_interval_seconds`,
or as soon as `prediction_flush_max_rows` are waiting, and at shutdown. The documented
worst case on a hard crash is the loss of that unflushed buffer; operators who cannot
accept it set `prediction_records_sync`, which writes each request's records in a
transaction of their own, committed before the answer is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.core.crypto import Keyring
from assay.core.cursors import newest_first, page_of
from assay.core.db_types import utcnow
from assay.core.logging import get_logger
from assay.core.tenancy import HasOrganisation, scoped
from assay.predictions.models import PredictionRecord
from assay.settings import Settings

RECORDS_WRITTEN = Counter("assay_prediction_records_written", "Prediction records written.")
RECORDS_DROPPED = Counter(
    "assay_prediction_records_dropped", "Prediction records dropped after the buffer overflowed."
)
RECORDS_PENDING = Gauge("assay_prediction_records_pending", "Prediction records not yet written.")
# A database outage must not eat all memory: past this, the oldest records are dropped.
_MAX_PENDING = 200_000
log = get_logger("assay.records")
# Rows are plain dicts with every column filled in, so they go to the table as a Core
# executemany; the ORM's bulk-insert path added ~15 us of Python per row.
_INSERT = insert(cast(Table, PredictionRecord.__table__))


def inputs_aad(org_id: uuid.UUID) -> bytes:
    return f"{org_id}:prediction_records:inputs_encrypted".encode()


def split_inputs(
    record: Mapping[str, Any],
    pii_fields: frozenset[str],
    pii_mode: str,
    keyring: Keyring,
    org_id: uuid.UUID,
) -> tuple[dict[str, Any], bytes | None]:
    """The plain inputs, and the PII fields sealed (or dropped, per the model's setting)."""
    plain = {k: v for k, v in record.items() if k not in pii_fields}
    private = {k: v for k, v in record.items() if k in pii_fields}
    if not private or pii_mode == "drop":
        return plain, None
    sealed = keyring.encrypt(json.dumps(private, sort_keys=True).encode(), inputs_aad(org_id))
    return plain, sealed


def read_private_inputs(keyring: Keyring, record: PredictionRecord) -> dict[str, Any]:
    if record.inputs_encrypted is None:
        return {}
    value: dict[str, Any] = json.loads(
        keyring.decrypt(record.inputs_encrypted, inputs_aad(record.org_id))
    )
    return value


# --- reading records back ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordFilter:
    model: str | None = None
    label: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_records(
    db: AsyncSession,
    scope: HasOrganisation,
    filters: RecordFilter,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[PredictionRecord], str | None]:
    """One page of the organisation's records, newest first, and the next page's cursor."""
    statement = scoped(scope, PredictionRecord)
    if filters.model is not None:
        statement = statement.where(PredictionRecord.model_name == filters.model)
    if filters.label is not None:
        statement = statement.where(PredictionRecord.label == filters.label)
    if filters.since is not None:
        statement = statement.where(PredictionRecord.created_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(PredictionRecord.created_at < filters.until)
    statement = newest_first(statement, PredictionRecord, cursor, limit)
    return page_of(list((await db.execute(statement)).scalars()), limit)


class PredictionRecorder:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    @property
    def synchronous(self) -> bool:
        return self._settings.prediction_records_sync

    @property
    def pending(self) -> int:
        """Records waiting in the buffer (a flush in progress has taken its batch out)."""
        return len(self._pending)

    def start(self) -> None:
        """At every lifespan start. The event and the lock are made anew here: an asyncio
        primitive belongs to the first event loop that waits on it, and a restarted
        lifespan may run in another loop (with the old ones, its task died at once)."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._stopping = False
        if not self.synchronous:
            self._task = asyncio.create_task(self._run(), name="prediction-recorder")

    async def stop(self) -> None:
        """Let a flush in progress finish, then write whatever is still buffered.

        The loop is asked to stop rather than cancelled: cancelling it in the middle of
        a flush would lose the batch that flush had taken off the buffer. Should the
        loop have died, the buffer is still written.
        """
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await self._task
            except Exception:
                log.exception("prediction_recorder_failed", rows=len(self._pending))
            finally:
                self._task = None
        await self.flush()
        if self._pending:
            log.error("prediction_records_lost_at_shutdown", rows=len(self._pending))

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        now = utcnow()
        for row in rows:
            row.setdefault("id", uuid.uuid4())
            row.setdefault("created_at", now)
            self._pending.append(row)
        overflow = len(self._pending) - _MAX_PENDING
        if overflow > 0:
            del self._pending[:overflow]
            RECORDS_DROPPED.inc(overflow)
        RECORDS_PENDING.set(len(self._pending))
        if len(self._pending) >= self._settings.prediction_flush_max_rows:
            self._wake.set()

    async def write_now(self, db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Synchronous mode: in the caller's transaction (the predict path opens one
        for these rows alone and commits it before answering)."""
        now = utcnow()
        for row in rows:
            row.setdefault("id", uuid.uuid4())
            row.setdefault("created_at", now)
        await db.execute(_INSERT, rows)
        RECORDS_WRITTEN.inc(len(rows))

    async def flush(self) -> int:
        async with self._flushing:
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                async with self._sessionmaker() as db:
                    await db.execute(_INSERT, batch)
                    await db.commit()
            except Exception:
                # Keep them for the next attempt rather than lose them.
                self._pending[:0] = batch
                RECORDS_PENDING.set(len(self._pending))
                log.exception("prediction_records_flush_failed", rows=len(batch))
                return 0
            except BaseException:
                # Cancelled mid-write: the batch goes back, so a later flush still has it.
                self._pending[:0] = batch
                RECORDS_PENDING.set(len(self._pending))
                raise
            RECORDS_WRITTEN.inc(len(batch))
            RECORDS_PENDING.set(len(self._pending))
            return len(batch)

    async def _run(self) -> None:
        interval = self._settings.prediction_flush_interval_seconds
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            self._wake.clear()
            await self.flush()
