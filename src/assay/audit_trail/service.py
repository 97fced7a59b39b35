"""The audit trail: verify a chain, list its events, export it, verify an export.

Reads of the trail are themselves audit events (`audit.read`, `audit.verified`,
`audit.exported`), written in the reading request's transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.audit.models import SecurityAction, SecurityEvent
from assay.audit.service import RequestMeta, record_event
from assay.audit_trail.chain import ChainVerifier, Report, SignatureCheck
from assay.audit_trail.models import ChainHead, Checkpoint
from assay.audit_trail.sealing import (
    Sealer,
    chain_name,
    checkpoint_fields,
    event_fields,
    in_chain,
)
from assay.audit_trail.signing import CheckpointSigner
from assay.core.cursors import newest_first, page_of
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scoped
from assay.settings import Settings

_READ_BATCH = 1000
EXPORT_FORMAT = "assay-audit-export/v1"


def build_sealer(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> Sealer:
    """The process's sealer, signing with the key derived from the encryption secret."""
    if settings.encryption_key is None:  # filled in by create_app / with_generated_secrets
        msg = "the audit trail needs ASSAY_ENCRYPTION_KEY"
        raise RuntimeError(msg)
    signer = CheckpointSigner.from_secret(settings.encryption_key.get_secret_value())
    return Sealer(settings, sessionmaker, signer)


async def _checkpoints(db: AsyncSession, chain: str) -> list[dict[str, Any]]:
    rows = (
        await db.execute(
            select(Checkpoint).where(Checkpoint.chain == chain).order_by(Checkpoint.seq)
        )
    ).scalars()
    return [checkpoint_fields(row) for row in rows]


async def _sealed_events(
    db: AsyncSession, org_id: uuid.UUID | None, up_to: int
) -> AsyncIterator[dict[str, Any]]:
    """The chain's sealed events up to `up_to`, in sequence order, a batch at a time."""
    after = 0
    while True:
        rows = list(
            (
                await db.execute(
                    select(SecurityEvent)
                    .where(
                        in_chain(org_id),
                        SecurityEvent.seq > after,
                        SecurityEvent.seq <= up_to,
                    )
                    .order_by(SecurityEvent.seq)
                    .limit(_READ_BATCH)
                )
            ).scalars()
        )
        for row in rows:
            yield event_fields(row)
        if len(rows) < _READ_BATCH:
            return
        after = int(rows[-1].seq or 0)
        db.expunge_all()


async def verify_chain(sealer: Sealer, org_id: uuid.UUID | None) -> Report:
    """Seal what is pending, then recompute the chain and report its first problem.

    Read in a session of its own, begun after the sealing: a caller's session may hold a
    snapshot older than it (SQLite, MariaDB's repeatable read).
    """
    await sealer.chain_pending(org_id, every=False)
    chain = chain_name(org_id)
    verifier = ChainVerifier(chain)
    async with sealer.sessionmaker() as db:
        head = await db.get(ChainHead, chain)
        head_seq = head.seq if head is not None else 0
        claimed = (head.seq, head.hash) if head is not None else None
        if verifier.expect_checkpoints(await _checkpoints(db, chain), sealer.signer.checker()):
            up_to = max(head_seq, _highest_checkpoint(verifier))
            async for event in _sealed_events(db, org_id, up_to):
                if not verifier.add(event):
                    break
    return verifier.finish(claimed)


def _highest_checkpoint(verifier: ChainVerifier) -> int:
    return verifier.report.last_checkpoint_seq or 0


async def verify_for(
    sealer: Sealer, db: AsyncSession, principal: OrgPrincipal, meta: RequestMeta
) -> Report:
    """Verify the principal's organisation's chain (an `audit.verified` event)."""
    report = await verify_chain(sealer, principal.org_id)
    record_event(
        db,
        meta,
        action=SecurityAction.AUDIT_VERIFIED,
        outcome="success" if report.ok else "failure",
        actor=principal,
        details={
            "events": report.events,
            "problem": report.problem.kind if report.problem else None,
        },
    )
    return report


@dataclass(frozen=True, slots=True)
class EventFilter:
    actor_id: str | None = None
    action: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_details(self) -> dict[str, str]:
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in (
                ("actor_id", self.actor_id),
                ("action", self.action),
                ("target_kind", self.target_kind),
                ("target_id", self.target_id),
                ("outcome", self.outcome),
                ("since", self.since),
                ("until", self.until),
            )
            if value is not None
        }


async def events_page(
    db: AsyncSession,
    principal: OrgPrincipal,
    meta: RequestMeta,
    where: EventFilter,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[SecurityEvent], str | None]:
    """The organisation's events, newest first, filtered (an `audit.read` event)."""
    statement = scoped(principal, SecurityEvent)
    for column, value in (
        (SecurityEvent.actor_id, where.actor_id),
        (SecurityEvent.action, where.action),
        (SecurityEvent.target_kind, where.target_kind),
        (SecurityEvent.target_id, where.target_id),
        (SecurityEvent.outcome, where.outcome),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if where.since is not None:
        statement = statement.where(SecurityEvent.occurred_at >= where.since)
    if where.until is not None:
        statement = statement.where(SecurityEvent.occurred_at < where.until)
    rows = (await db.execute(newest_first(statement, SecurityEvent, cursor, limit))).scalars().all()
    page, next_cursor = page_of(rows, limit)
    record_event(
        db,
        meta,
        action=SecurityAction.AUDIT_READ,
        actor=principal,
        details={"filter": where.as_details(), "events": len(page)},
    )
    return page, next_cursor


async def export_lines(
    sealer: Sealer, db: AsyncSession, org_id: uuid.UUID | None
) -> AsyncIterator[str]:
    """The chain as JSON Lines: a header, every sealed event, then every checkpoint.

    A checkpoint is signed at the current head first, so the whole export is covered.
    """
    await sealer.checkpoint_now(org_id)
    chain = chain_name(org_id)
    head = await db.get(ChainHead, chain)
    head_seq = head.seq if head is not None else 0
    yield _line(
        {
            "type": "header",
            "format": EXPORT_FORMAT,
            "chain": chain,
            "head_seq": head_seq,
            "key_id": sealer.signer.key_id,
        }
    )
    async for event in _sealed_events(db, org_id, head_seq):
        yield _line({"type": "event", **event})
    for checkpoint in await _checkpoints(db, chain):
        if checkpoint["seq"] <= head_seq:
            yield _line({"type": "checkpoint", **checkpoint})


def export_for(
    sealer: Sealer, db: AsyncSession, principal: OrgPrincipal, meta: RequestMeta
) -> AsyncIterator[str]:
    """Record the `audit.exported` event, and the export's lines to stream after commit.

    The lines are read in a session of their own: the request's has committed by then.
    """
    record_event(db, meta, action=SecurityAction.AUDIT_EXPORTED, actor=principal)
    return _export_in_own_session(sealer, principal.org_id)


async def _export_in_own_session(sealer: Sealer, org_id: uuid.UUID) -> AsyncIterator[str]:
    async with sealer.sessionmaker() as db:
        async for line in export_lines(sealer, db, org_id):
            yield line


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


class ExportFormatError(ValueError):
    """The file is not an audit export; the message says which line and why."""


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"line {number} is not JSON: {exc.msg}"
                raise ExportFormatError(msg) from None
            if not isinstance(record, dict) or record.get("type") not in (
                "header",
                "event",
                "checkpoint",
            ):
                msg = f"line {number} is not a header, event or checkpoint record"
                raise ExportFormatError(msg)
            yield number, record


def verify_export(path: Path, check_signature: SignatureCheck) -> Report:
    """Verify an exported chain offline, with the audit public key's checker."""
    header: dict[str, Any] | None = None
    checkpoints: list[dict[str, Any]] = []
    for number, record in _records(path):
        if record["type"] == "header":
            if header is not None or number != 1 or record.get("format") != EXPORT_FORMAT:
                msg = f"line {number}: the header must be the first line, format {EXPORT_FORMAT}"
                raise ExportFormatError(msg)
            header = record
        elif record["type"] == "checkpoint":
            checkpoints.append(record)
    if header is None:
        msg = "the file has no header line: it is not an audit export"
        raise ExportFormatError(msg)
    verifier = ChainVerifier(str(header["chain"]))
    if verifier.expect_checkpoints(checkpoints, check_signature):
        for _, record in _records(path):
            if record["type"] == "event":
                try:
                    still_good = verifier.add(record)
                except (KeyError, TypeError, ValueError) as exc:
                    msg = f"event {record.get('id')!r} lacks a field or has a malformed one: {exc}"
                    raise ExportFormatError(msg) from None
                if not still_good:
                    break
    # The header's head is unsigned: a cut tail is found back to the last checkpoint.
    return verifier.finish()
