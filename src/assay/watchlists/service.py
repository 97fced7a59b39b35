"""The watchlist: indicators an organisation wants looked up again on a schedule.

`check_due_once` claims the entries that are due (in every organisation, by a
compare-and-set on `next_check_at`, so any number of processes may run it), looks each
up afresh (past the result cache), and in one transaction stores the lookup, moves the
entry on and — when the verdict differs from the last one — publishes
`lookup.verdict_changed`, which webhooks deliver. `watchlist_checker` runs it in a loop in
every API and worker process.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.cursors import newest_first, page_of
from assay.core.db_types import utcnow
from assay.core.errors import AssayError
from assay.core.logging import get_logger
from assay.core.periodic import PeriodicTask
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import across_tenants, scope_statement, scoped
from assay.events import service as events
from assay.lookups.service import LookupService, indicator_digest
from assay.settings import Settings
from assay.watchlists.errors import AlreadyWatched, WatchlistEntryNotFound
from assay.watchlists.models import WatchlistEntry

log = get_logger("assay.watchlists")

VERDICT_CHANGED = "lookup.verdict_changed"
events.register_event_type(
    VERDICT_CHANGED,
    "A watched indicator's verdict changed at its re-check: data has the indicator, the "
    "previous and new verdict and score, and the lookup's id.",
)
# The lease a checker holds on an entry while it looks it up.
_LEASE_SECONDS = 120


def watcher(org_id: uuid.UUID) -> OrgPrincipal:
    """Who re-checks: the watchlist itself, allowed to look up and nothing more."""
    return OrgPrincipal(
        kind="platform",
        id=uuid.UUID(int=0),
        org_id=org_id,
        permissions=frozenset({Permission.LOOKUPS_RUN}),
        auth_method="cli",
    )


async def add(
    db: AsyncSession,
    lookups: LookupService,
    principal: OrgPrincipal,
    text: str,
    *,
    interval_seconds: int,
    note: str,
) -> WatchlistEntry:
    """Watch `text` (canonicalised); its first check is due at once."""
    indicator = lookups.canonical(text)
    entry = WatchlistEntry(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        indicator=indicator.value,
        indicator_digest=indicator_digest(indicator),
        indicator_type=str(indicator.type),
        interval_seconds=interval_seconds,
        note=note,
        next_check_at=utcnow(),
        created_by=principal.actor_id,
        created_at=utcnow(),
    )
    try:
        async with db.begin_nested():
            db.add(entry)
            await db.flush()
    except IntegrityError:
        raise AlreadyWatched(f"{indicator.value} is on the watchlist already.") from None
    return entry


async def get(db: AsyncSession, principal: OrgPrincipal, entry_id: uuid.UUID) -> WatchlistEntry:
    entry = await db.scalar(scoped(principal, WatchlistEntry).where(WatchlistEntry.id == entry_id))
    if entry is None:
        raise WatchlistEntryNotFound("No such entry on this organisation's watchlist.")
    return entry


async def remove(db: AsyncSession, principal: OrgPrincipal, entry_id: uuid.UUID) -> None:
    entry = await get(db, principal, entry_id)
    await db.execute(
        scope_statement(
            principal, delete(WatchlistEntry).where(WatchlistEntry.id == entry.id), WatchlistEntry
        )
    )


async def page(
    db: AsyncSession, principal: OrgPrincipal, *, cursor: str | None, limit: int
) -> tuple[list[WatchlistEntry], str | None]:
    statement = newest_first(scoped(principal, WatchlistEntry), WatchlistEntry, cursor, limit)
    return page_of(list((await db.scalars(statement)).all()), limit)


async def _claim(lookups: LookupService, settings: Settings, now: datetime) -> list[uuid.UUID]:
    reason = "the watchlist checker re-checks every organisation's due entries"
    claimed: list[uuid.UUID] = []
    async with lookups.sessionmaker() as db:
        due = (
            select(WatchlistEntry.id)
            .where(WatchlistEntry.next_check_at <= now)
            .order_by(WatchlistEntry.next_check_at)
            .limit(settings.watchlist_batch_size)
        )
        for entry_id in list((await db.execute(across_tenants(due, reason))).scalars()):
            # Compare-and-set: one checker turns a due entry into its lease.
            moved = await db.execute(
                across_tenants(
                    update(WatchlistEntry)
                    .where(WatchlistEntry.id == entry_id, WatchlistEntry.next_check_at <= now)
                    .values(next_check_at=now + timedelta(seconds=_LEASE_SECONDS))
                    .execution_options(synchronize_session=False),
                    reason,
                )
            )
            if cast(CursorResult[Any], moved).rowcount == 1:
                claimed.append(entry_id)
        await db.commit()
    return claimed


async def _check(lookups: LookupService, entry_id: uuid.UUID, now: datetime) -> None:
    reason = "the watchlist checker reads the entry it claimed"
    async with lookups.sessionmaker() as db:
        entry = await db.scalar(
            across_tenants(select(WatchlistEntry).where(WatchlistEntry.id == entry_id), reason)
        )
    if entry is None:  # removed meanwhile
        return
    principal = watcher(entry.org_id)
    indicator = lookups.canonical(entry.indicator)
    configured, served = await lookups.setup(principal, None)
    lookup, _ = await lookups.look_up(
        principal,
        indicator,
        configured,
        served,
        force_refresh=True,
        request_id=f"watchlist:{entry.id}",
        record=True,
    )
    lookup.created_by = "watchlist"
    previous = entry.last_verdict
    async with lookups.sessionmaker() as db, db.begin():
        db.add(lookup)
        await db.execute(
            scope_statement(
                principal,
                update(WatchlistEntry)
                .where(WatchlistEntry.id == entry.id)
                .values(
                    last_verdict=lookup.verdict,
                    last_score=lookup.score,
                    last_lookup_id=lookup.id,
                    last_checked_at=now,
                    next_check_at=now + timedelta(seconds=entry.interval_seconds),
                ),
                WatchlistEntry,
            )
        )
        if previous is not None and previous != lookup.verdict:
            await events.publish(
                db,
                org_id=entry.org_id,
                type=VERDICT_CHANGED,
                data={
                    "watchlist_entry_id": str(entry.id),
                    "indicator": entry.indicator,
                    "indicator_type": entry.indicator_type,
                    "previous_verdict": previous,
                    "previous_score": entry.last_score,
                    "verdict": lookup.verdict,
                    "score": lookup.score,
                    "lookup_id": str(lookup.id),
                },
            )
            log.info("watchlist_verdict_changed", entry=str(entry.id), verdict=lookup.verdict)


async def check_due_once(
    lookups: LookupService, settings: Settings, *, now: datetime | None = None
) -> int:
    """Re-check the entries due at `now`; return how many were claimed."""
    now = now or utcnow()
    claimed = await _claim(lookups, settings, now)
    for entry_id in claimed:
        try:
            await _check(lookups, entry_id, now)
        except AssayError as exc:
            # The organisation's set-up cannot look up now (no verdict model, say): the
            # entry stays claimed for its lease, then is due again.
            log.warning("watchlist_check_failed", entry=str(entry_id), error=exc.detail)
    return len(claimed)


def watchlist_checker(lookups: LookupService, settings: Settings) -> PeriodicTask:
    """Runs `check_due_once` every `watchlist_poll_interval_seconds` in this process."""

    async def check() -> None:
        await check_due_once(lookups, settings)

    return PeriodicTask(
        "watchlist-checker",
        check,
        settings.watchlist_poll_interval_seconds,
        failure_event="watchlist_checker_failed",
    )
