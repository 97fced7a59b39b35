"""Re-encryption runs: every sealed value not under the active key, sealed again under it.

A run goes through the sealed columns (assay.core.sealed) in name order, a bounded
batch at a time, in id order. Each batch is one transaction: the re-sealed values, the
run's progress and the column's cursor commit together, so a killed worker loses at
most the batch in hand and whoever takes the run over (after its lease ran out)
continues from the cursor. A value is only replaced if it is still the one that was
read, so a concurrent write always wins. A value that cannot be opened (its key is
unknown or retired, or it is damaged) is counted as failed and left as it is.

Runs are picked up by the maintenance loop every process runs (`KeyMaintenance`),
or worked in the foreground by `assay data-keys reencrypt`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.crypto import DecryptionError
from assay.core.db_types import utcnow
from assay.core.keyring_store import KeyringKeeper
from assay.core.logging import get_logger
from assay.core.periodic import PeriodicTask
from assay.core.sealed import SealedColumn, sealed_columns
from assay.core.tenancy import across_tenants
from assay.keys.models import KeyReencryption, RunState
from assay.keys.service import ACROSS_TENANTS, ciphertext_key, key_id_literal
from assay.settings import Settings

log = get_logger("assay.keys")
BACKGROUND = RequestMeta(user_agent="assay-key-maintenance")


def _not_under(sealed: SealedColumn, active: str) -> Any:
    column = getattr(sealed.model, sealed.column)
    return column.is_not(None) & (ciphertext_key(column) != key_id_literal(active))


async def count_outstanding(db: AsyncSession, active: str) -> int:
    """Values in every sealed column not sealed with `active`."""
    total = 0
    for sealed in sealed_columns():
        count = await db.scalar(
            across_tenants(
                select(func.count()).select_from(sealed.model).where(_not_under(sealed, active)),
                ACROSS_TENANTS,
            )
        )
        total += int(count or 0)
    return total


class Reencryptor:
    """Works re-encryption runs in this process, one batch per transaction."""

    def __init__(
        self,
        settings: Settings,
        keeper: KeyringKeeper,
        sessionmaker: async_sessionmaker[AsyncSession],
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.keeper = keeper
        self.sessionmaker = sessionmaker
        self.owner = owner or f"reencrypt-{secrets.token_hex(6)}"
        # Set when the process stops: the run under way ends after its current batch
        # (committed) and is released for another process to continue.
        self.stopping = False

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.settings.keys_reencrypt_lease_seconds)

    async def claim(self, run_id: uuid.UUID) -> bool:
        """Take the run: queued, ours already, or running under a lease that ran out."""
        now = utcnow()
        async with self.sessionmaker() as db:
            result = await db.execute(
                update(KeyReencryption)
                .where(
                    KeyReencryption.id == run_id,
                    or_(
                        KeyReencryption.state == RunState.QUEUED,
                        (KeyReencryption.state == RunState.RUNNING)
                        & or_(
                            KeyReencryption.lease_owner == self.owner,
                            KeyReencryption.lease_expires_at.is_(None),
                            KeyReencryption.lease_expires_at < now,
                        ),
                    ),
                )
                .values(
                    state=RunState.RUNNING,
                    lease_owner=self.owner,
                    lease_expires_at=now + self._lease,
                    updated_at=now,
                )
            )
            await db.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, run_id: uuid.UUID) -> None:
        """Let go of a run stopped on purpose, so anyone may continue it at once."""
        async with self.sessionmaker() as db:
            await db.execute(
                update(KeyReencryption)
                .where(KeyReencryption.id == run_id, KeyReencryption.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None, updated_at=utcnow())
            )
            await db.commit()

    async def next_claimable(self) -> uuid.UUID | None:
        now = utcnow()
        async with self.sessionmaker() as db:
            return await db.scalar(
                select(KeyReencryption.id)
                .where(
                    or_(
                        KeyReencryption.state == RunState.QUEUED,
                        (KeyReencryption.state == RunState.RUNNING)
                        & or_(
                            KeyReencryption.lease_expires_at.is_(None),
                            KeyReencryption.lease_expires_at < now,
                        ),
                    )
                )
                .order_by(KeyReencryption.created_at)
                .limit(1)
            )

    async def run_pending(self) -> int:
        """Work every run that is waiting (or abandoned) to its end; how many were."""
        worked = 0
        while not self.stopping and (run_id := await self.next_claimable()) is not None:
            if not await self.claim(run_id):
                break  # another process took it
            await self.run(run_id)
            if self.stopping:
                await self.release(run_id)
                break
            worked += 1
        return worked

    async def run(
        self,
        run_id: uuid.UUID,
        *,
        max_batches: int | None = None,
        progress: Callable[[KeyReencryption], None] | None = None,
    ) -> KeyReencryption:
        """Work a claimed run: to its end, or (`max_batches`, counting batches that found
        values) stop and keep holding it, as a killed worker would. Returns the run as
        last committed."""
        await self.keeper.ensure_fresh()
        batches = 0
        async with self.sessionmaker() as db:
            run = await self._start(db, run_id)
            for sealed in sealed_columns():
                while True:
                    if self.stopping or (max_batches is not None and batches >= max_batches):
                        return run
                    moved = await self._batch(db, run, sealed)
                    if not moved:
                        break
                    batches += 1
                    if progress is not None:
                        progress(run)
            return await self._finish(db, run)

    async def _start(self, db: AsyncSession, run_id: uuid.UUID) -> KeyReencryption:
        run = await db.get(KeyReencryption, run_id)
        if run is None or run.lease_owner != self.owner:
            msg = "the re-encryption run is not held by this worker"
            raise RuntimeError(msg)
        if run.started_at is None:
            run.started_at = utcnow()
            run.total = await count_outstanding(db, self.keeper.keyring.active_key_id)
            await db.commit()
            log.info("reencryption_started", run_id=str(run.id), total=run.total)
        return run

    async def _batch(self, db: AsyncSession, run: KeyReencryption, sealed: SealedColumn) -> bool:
        """Re-seal one batch of `sealed`; False when the column has nothing left."""
        await self.keeper.ensure_fresh()
        keyring = self.keeper.keyring
        model = sealed.model
        column = getattr(model, sealed.column)
        ident = model.id  # type: ignore[attr-defined]
        cursors = dict(run.cursors or {})
        after = cursors.get(sealed.name)
        query = (
            select(ident, column, *(getattr(model, name) for name in sealed.aad_columns))
            .where(_not_under(sealed, keyring.active_key_id))
            .order_by(ident)
            .limit(self.settings.keys_reencrypt_batch_size)
        )
        if after is not None:
            query = query.where(ident > uuid.UUID(after))
        rows = (await db.execute(across_tenants(query, ACROSS_TENANTS))).all()
        done = failed = 0
        for row in rows:
            old = row[1]
            try:
                new = keyring.reseal(old, sealed.aad(row))
            except DecryptionError:
                failed += 1
                continue
            result = await db.execute(
                across_tenants(
                    update(model)
                    .where(ident == row[0], column == old)
                    .values({sealed.column: new}),
                    ACROSS_TENANTS,
                )
            )
            done += int(result.rowcount)  # type: ignore[attr-defined]
        if rows:
            cursors[sealed.name] = str(rows[-1][0])
        now = utcnow()
        run.cursors = cursors
        run.done += done
        run.failed += failed
        run.lease_expires_at = now + self._lease
        run.updated_at = now
        await db.commit()
        return bool(rows)

    async def _finish(self, db: AsyncSession, run: KeyReencryption) -> KeyReencryption:
        now = utcnow()
        run.state = RunState.SUCCEEDED
        run.finished_at = now
        run.updated_at = now
        run.lease_owner = None
        run.lease_expires_at = None
        record_event(
            db,
            BACKGROUND,
            action=SecurityAction.DATA_KEY_REENCRYPTED,
            actor_kind="system",
            actor_id=self.owner,
            target_kind="data_key",
            target_id=run.key_id,
            outcome="success" if run.failed == 0 else "partial",
            details={
                "reencryption_id": str(run.id),
                "key_id": self.keeper.keyring.active_key_id,
                "resealed": run.done,
                "failed": run.failed,
            },
        )
        await db.commit()
        log.info("reencryption_finished", run_id=str(run.id), resealed=run.done, failed=run.failed)
        return run


class KeyMaintenance:
    """The loop every process runs: keep the keyring fresh, and (when enabled) work
    waiting re-encryption runs. `wake()` makes it look now (after a rotation).

    Stopping lets the step under way end instead of cancelling it: a query cancelled
    half-way leaves its database connection to the garbage collector. A re-encryption
    run stops after its current batch and is released for another process.
    """

    def __init__(self, keeper: KeyringKeeper, reencryptor: Reencryptor | None) -> None:
        self.keeper = keeper
        self.reencryptor = reencryptor
        self._loop = PeriodicTask(
            "key-maintenance",
            self.step,
            max(keeper.settings.key_refresh_seconds, 1.0),
            failure_event="key_maintenance_failed",
        )

    def wake(self) -> None:
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        if self.reencryptor is not None:
            self.reencryptor.stopping = True
        await self._loop.stop()

    async def step(self) -> None:
        await self.keeper.ensure_fresh()
        if self.reencryptor is not None:
            await self.reencryptor.run_pending()
