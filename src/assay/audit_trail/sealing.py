"""The chainer: gives newly written security events their place in their chain.

Events are written unchained, in the transaction of the change they describe, so a
request never waits for a chain. Sealing happens shortly after, here, one transaction
per batch: claim the chain's head row (an UPDATE, which locks it on every database and
takes SQLite's write lock first), read the chain's unsealed events in a fixed order
(time, then id), give them seq = head + 1, ... with prev_hash and hash, move the head,
and sign a checkpoint when one is due. Any number of processes may run it at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.audit.models import SecurityEvent
from assay.audit_trail.chain import (
    GENESIS_HASH,
    PLATFORM_CHAIN,
    checkpoint_message,
    event_hash,
    timestamp,
)
from assay.audit_trail.forwarding import AuditForwarder
from assay.audit_trail.models import ChainHead, Checkpoint
from assay.audit_trail.signing import CheckpointSigner
from assay.core.db_types import utcnow
from assay.core.logging import get_logger
from assay.core.periodic import PeriodicTask
from assay.settings import Settings

log = get_logger("assay.audit_trail")


def chain_name(org_id: uuid.UUID | None) -> str:
    """The chain an organisation's events (or the platform's, for None) belong to."""
    return PLATFORM_CHAIN if org_id is None else str(org_id)


def in_chain(org_id: uuid.UUID | None) -> ColumnElement[bool]:
    """The events of one chain."""
    if org_id is None:
        return SecurityEvent.org_id.is_(None)
    return SecurityEvent.org_id == org_id


def event_fields(event: SecurityEvent) -> dict[str, Any]:
    """An event as the chain hashes it and an export writes it."""
    return {
        "id": str(event.id),
        "org_id": str(event.org_id) if event.org_id else None,
        "seq": event.seq,
        "occurred_at": timestamp(event.occurred_at),
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "action": event.action,
        "target_kind": event.target_kind,
        "target_id": event.target_id,
        "outcome": event.outcome,
        "client_address": event.client_address,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details or {},
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def checkpoint_fields(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "chain": checkpoint.chain,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "signed_at": timestamp(checkpoint.signed_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


class Sealer:
    """Seals pending events and signs checkpoints, for every chain or one."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        signer: CheckpointSigner,
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self.sessionmaker = sessionmaker
        self.signer = signer
        # Set by the application when forwarding to a SIEM is on (audit_forward).
        self.forwarder: AuditForwarder | None = None

    async def chain_pending(self, org_id: uuid.UUID | None = None, *, every: bool = True) -> int:
        """Seal every pending event (of one chain when `every` is False); how many."""
        if every:
            async with self._sessionmaker() as db:
                chains = set(
                    (
                        await db.execute(
                            select(SecurityEvent.org_id)
                            .where(SecurityEvent.seq.is_(None))
                            .distinct()
                        )
                    ).scalars()
                )
        else:
            chains = {org_id}
        sealed = 0
        for chain_org in sorted(chains, key=chain_name):
            while True:
                count = await self.seal(chain_org)
                sealed += count
                if count < self._settings.audit_chain_batch_size:
                    break
        return sealed

    async def checkpoint_now(self, org_id: uuid.UUID | None) -> None:
        """Seal the chain's pending events and sign a checkpoint at its head, if it has moved."""
        await self.chain_pending(org_id, every=False)
        await self.seal(org_id, force_checkpoint=True)

    async def checkpoint_overdue(self) -> int:
        """Sign a checkpoint on every chain whose last one is older than the interval."""
        before = utcnow() - timedelta(seconds=self._settings.audit_checkpoint_interval_seconds)
        async with self._sessionmaker() as db:
            heads = (
                await db.execute(
                    select(ChainHead.chain).where(
                        ChainHead.seq > ChainHead.checkpoint_seq,
                        (ChainHead.checkpoint_at.is_(None)) | (ChainHead.checkpoint_at < before),
                    )
                )
            ).scalars()
            names = list(heads)
        for name in names:
            await self.seal(
                None if name == PLATFORM_CHAIN else uuid.UUID(name), force_checkpoint=True
            )
        return len(names)

    async def _ensure_head(self, chain: str) -> None:
        async with self._sessionmaker() as db:
            if await db.get(ChainHead, chain) is not None:
                return
            db.add(ChainHead(chain=chain, seq=0, hash=GENESIS_HASH, checkpoint_seq=0))
            try:
                await db.commit()
            except IntegrityError:  # another process created it first: that one is used
                await db.rollback()

    async def seal(self, org_id: uuid.UUID | None, *, force_checkpoint: bool = False) -> int:
        """Seal up to one batch of the chain's pending events, in one transaction."""
        chain = chain_name(org_id)
        await self._ensure_head(chain)
        async with self._sessionmaker() as db, db.begin():
            now = utcnow()
            # The claim: a write to the head row locks it (PostgreSQL, MariaDB) or takes
            # the database's write lock (SQLite) before anything is read.
            await db.execute(
                update(ChainHead).where(ChainHead.chain == chain).values(updated_at=now)
            )
            head = (
                await db.execute(
                    select(ChainHead).where(ChainHead.chain == chain).with_for_update()
                )
            ).scalar_one()
            events = (
                await db.execute(
                    select(SecurityEvent)
                    .where(in_chain(org_id), SecurityEvent.seq.is_(None))
                    .order_by(SecurityEvent.occurred_at, SecurityEvent.id)
                    .limit(self._settings.audit_chain_batch_size)
                )
            ).scalars()
            seq, prev = head.seq, head.hash
            count = 0
            sealed: list[dict[str, Any]] = []
            for event in list(events):
                fields = event_fields(event)
                fields["prev_hash"] = prev
                digest = event_hash(fields)
                result = await db.execute(
                    update(SecurityEvent)
                    .where(SecurityEvent.id == event.id, SecurityEvent.seq.is_(None))
                    .values(seq=seq + 1, prev_hash=prev, hash=digest)
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 1) != 1:
                    msg = (
                        f"event {event.id} was sealed by someone else while chain {chain} was held"
                    )
                    raise RuntimeError(msg)
                seq, prev, count = seq + 1, digest, count + 1
                sealed.append({**fields, "seq": seq, "hash": digest})
            head.seq, head.hash = seq, prev
            if self._checkpoint_due(head, now, force=force_checkpoint):
                self._sign(db, head, now)
        # After the commit: only what is sealed for good leaves the process.
        if sealed and self.forwarder is not None:
            await self.forwarder.forward(sealed)
        return count

    def _checkpoint_due(self, head: ChainHead, now: datetime, *, force: bool) -> bool:
        if head.seq <= head.checkpoint_seq:
            return False
        if force or head.seq - head.checkpoint_seq >= self._settings.audit_checkpoint_every:
            return True
        interval = timedelta(seconds=self._settings.audit_checkpoint_interval_seconds)
        return head.checkpoint_at is None or now - head.checkpoint_at >= interval

    def _sign(self, db: AsyncSession, head: ChainHead, now: datetime) -> None:
        fields = {
            "chain": head.chain,
            "seq": head.seq,
            "hash": head.hash,
            "signed_at": timestamp(now),
            "key_id": self.signer.key_id,
        }
        db.add(
            Checkpoint(
                chain=head.chain,
                seq=head.seq,
                hash=head.hash,
                signed_at=now,
                key_id=self.signer.key_id,
                signature=self.signer.sign(checkpoint_message(fields)),
            )
        )
        head.checkpoint_seq, head.checkpoint_at = head.seq, now


def audit_chainer(sealer: Sealer, settings: Settings) -> PeriodicTask:
    """Seals pending events every `audit_chain_interval_seconds` in this process, and once
    more on the way out, so the events of the process's last requests are not left for
    the next process to seal."""

    async def seal() -> None:
        await sealer.chain_pending()
        await sealer.checkpoint_overdue()

    return PeriodicTask(
        "audit-chainer",
        seal,
        settings.audit_chain_interval_seconds,
        failure_event="audit_chainer_failed",
        last=sealer.chain_pending,
    )
