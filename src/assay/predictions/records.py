"""Prediction records: every scoring, kept off the hot path and flushed in batches.

Records collect in memory and are written every `prediction_flush_interval_seconds`,
or as soon as `prediction_flush_max_rows` are waiting, and at shutdown. The documented
worst case on a hard crash is the loss of that unflushed buffer; operators who cannot
accept it set `prediction_records_sync`, which writes each request's records in a
transaction of their own, committed before the answer is sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.core.buffered_inserts import BufferedInserts
from assay.core.crypto import Keyring
from assay.core.cursors import newest_first, page_of
from assay.core.logging import get_logger
from assay.core.tenancy import HasOrganisation, scoped
from assay.predictions.models import PredictionRecord, inputs_aad
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


class PredictionRecorder(BufferedInserts):
    """Prediction records in batches; with `prediction_records_sync`, in the request's own
    transaction instead (`write_now`)."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(
            "prediction-recorder",
            _INSERT,
            sessionmaker,
            interval_seconds=settings.prediction_flush_interval_seconds,
            max_rows=settings.prediction_flush_max_rows,
            max_pending=_MAX_PENDING,
            written=RECORDS_WRITTEN,
            dropped=RECORDS_DROPPED,
            pending=RECORDS_PENDING,
        )
        self._settings = settings

    @property
    def synchronous(self) -> bool:
        return self._settings.prediction_records_sync

    def start(self) -> None:
        if not self.synchronous:
            super().start()

    async def write_now(self, db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Synchronous mode: in the caller's transaction (the predict path opens one
        for these rows alone and commits it before answering)."""
        await db.execute(_INSERT, self.stamp(rows))
        RECORDS_WRITTEN.inc(len(rows))
