"""Reads of sensitive data as audit events, kept off the request path.

A read changes nothing, so — unlike a change, whose event is written in the change's own
transaction — its event is buffered and inserted in batches with the other reads
(`BufferedInserts`: every `audit_reads_flush_seconds`, or sooner when many wait, and at
shutdown). The audit chainer then seals them into the organisation's chain like any
event. The documented worst case on a hard crash is the loss of the unwritten buffer.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.audit.models import SecurityAction, SecurityEvent
from assay.audit.service import SECURITY_EVENTS, RequestMeta
from assay.core.buffered_inserts import BufferedInserts
from assay.core.principal import Principal
from assay.settings import Settings

READS_WRITTEN = Counter("assay_audit_reads_written", "Audited reads written to the trail.")
READS_DROPPED = Counter(
    "assay_audit_reads_dropped", "Audited reads dropped after the buffer overflowed."
)
READS_PENDING = Gauge("assay_audit_reads_pending", "Audited reads not yet written.")
_MAX_PENDING = 100_000
# Every row carries the same keys, as one executemany needs.
_INSERT = insert(cast(Table, SecurityEvent.__table__))


class ReadAudit(BufferedInserts):
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(
            "audit-reads",
            _INSERT,
            sessionmaker,
            interval_seconds=settings.audit_reads_flush_seconds,
            max_rows=500,
            max_pending=_MAX_PENDING,
            written=READS_WRITTEN,
            dropped=READS_DROPPED,
            pending=READS_PENDING,
            time_column="occurred_at",
        )

    def note(
        self,
        meta: RequestMeta,
        reader: Principal,
        action: SecurityAction,
        *,
        target_kind: str | None = None,
        target_id: uuid.UUID | str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record that `reader` read something sensitive (never the data itself)."""
        self.add(
            [
                {
                    "org_id": reader.org_id,
                    "actor_kind": reader.kind,
                    "actor_id": reader.actor_id,
                    "action": str(action),
                    "target_kind": target_kind,
                    "target_id": str(target_id) if target_id is not None else None,
                    "outcome": "success",
                    "client_address": meta.client_address,
                    "user_agent": meta.user_agent,
                    "request_id": meta.request_id,
                    "details": details or {},
                }
            ]
        )
        SECURITY_EVENTS.labels(str(action), "success").inc()
