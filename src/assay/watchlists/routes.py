"""/v1/watchlist: indicators re-checked on a schedule (docs/threat-intel.md, Watchlists)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from assay.core.db import DbSession
from assay.core.paging import Cursor, PageLimit
from assay.http.rate_limit import RateLimitManagement
from assay.lookups.deps import Lookups
from assay.watchlists import service as watchlist
from assay.watchlists.deps import CanReadWatchlist, CanWatch
from assay.watchlists.models import WatchlistEntry
from assay.watchlists.schemas import WatchCreate, WatchPage, WatchView

router = APIRouter(prefix="/v1/watchlist", tags=["lookups"])


def _view(entry: WatchlistEntry) -> WatchView:
    return WatchView.model_validate(entry, from_attributes=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Watch an indicator: looked up now and again every interval",
    responses={409: {"description": "Already on the watchlist (already-watched)"}},
)
async def watch(
    body: WatchCreate,
    principal: CanWatch,
    _limit: RateLimitManagement,
    db: DbSession,
    lookups: Lookups,
) -> WatchView:
    entry = await watchlist.add(
        db,
        lookups,
        principal,
        body.indicator,
        interval_seconds=body.interval_seconds,
        note=body.note,
    )
    return _view(entry)


@router.get("", summary="The organisation's watchlist, newest first")
async def list_watchlist(
    principal: CanReadWatchlist,
    _limit: RateLimitManagement,
    db: DbSession,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> WatchPage:
    rows, next_cursor = await watchlist.page(db, principal, cursor=cursor, limit=limit)
    return WatchPage(items=[_view(row) for row in rows], next_cursor=next_cursor)


@router.get("/{entry_id}", summary="One watched indicator, with its last verdict")
async def get_watch(
    entry_id: uuid.UUID, principal: CanReadWatchlist, _limit: RateLimitManagement, db: DbSession
) -> WatchView:
    return _view(await watchlist.get(db, principal, entry_id))


@router.delete(
    "/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Stop watching an indicator"
)
async def unwatch(
    entry_id: uuid.UUID, principal: CanWatch, _limit: RateLimitManagement, db: DbSession
) -> None:
    await watchlist.remove(db, principal, entry_id)
