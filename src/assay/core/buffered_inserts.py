"""Rows of one table kept off the request path: collected in memory, inserted in batches.

A batch is written every `interval` seconds, as soon as `max_rows` rows wait, and at
stop. A failed write puts its batch back for the next attempt; past `max_pending` rows
(a database outage must not eat all memory) the oldest are dropped and counted. The
documented worst case on a hard crash is the loss of the unwritten buffer. Prediction
records and audited reads both ride on this.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import Insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.core.db_types import utcnow
from assay.core.logging import get_logger

log = get_logger("assay.buffered_inserts")


class BufferedInserts:
    def __init__(
        self,
        name: str,
        statement: Insert,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        interval_seconds: float,
        max_rows: int,
        max_pending: int,
        written: Counter,
        dropped: Counter,
        pending: Gauge,
        time_column: str = "created_at",
    ) -> None:
        self.name = name
        self._time_column = time_column
        self._statement = statement
        self._sessionmaker = sessionmaker
        self._interval = interval_seconds
        self._max_rows = max_rows
        self._max_pending = max_pending
        self._written, self._dropped, self._pending_gauge = written, dropped, pending
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    @property
    def pending(self) -> int:
        """Rows waiting in the buffer (a flush in progress has taken its batch out)."""
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
        self._task = asyncio.create_task(self._run(), name=self.name)

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
                log.exception("buffered_inserts_failed", buffer=self.name, rows=self.pending)
            finally:
                self._task = None
        await self.flush()
        if self._pending:
            log.error("buffered_rows_lost_at_shutdown", buffer=self.name, rows=self.pending)

    def stamp(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows with an id and a creation time where they have none."""
        now = utcnow()
        stamped = []
        for row in rows:
            row.setdefault("id", uuid.uuid4())
            row.setdefault(self._time_column, now)
            stamped.append(row)
        return stamped

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        self._pending.extend(self.stamp(rows))
        overflow = len(self._pending) - self._max_pending
        if overflow > 0:
            del self._pending[:overflow]
            self._dropped.inc(overflow)
        self._pending_gauge.set(len(self._pending))
        if len(self._pending) >= self._max_rows:
            self._wake.set()

    async def flush(self) -> int:
        async with self._flushing:
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                async with self._sessionmaker() as db:
                    await db.execute(self._statement, batch)
                    await db.commit()
            except Exception:
                # Keep them for the next attempt rather than lose them.
                self._pending[:0] = batch
                self._pending_gauge.set(len(self._pending))
                log.exception("buffered_inserts_flush_failed", buffer=self.name, rows=len(batch))
                return 0
            except BaseException:
                # Cancelled mid-write: the batch goes back, so a later flush still has it.
                self._pending[:0] = batch
                self._pending_gauge.set(len(self._pending))
                raise
            self._written.inc(len(batch))
            self._pending_gauge.set(len(self._pending))
            return len(batch)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            await self.flush()
