"""/v1/lookups: score an indicator across providers; past lookups."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from assay.audit.deps import AuditedReads
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta
from assay.core.db import DbSession
from assay.core.paging import Cursor, PageLimit, Since, Until
from assay.http.rate_limit import RateLimitManagement, RateLimitScoring
from assay.lookups.deps import CanReadLookups, CanRunLookups, Lookups
from assay.lookups.models import Lookup
from assay.lookups.schemas import LookupCreate, LookupPage, LookupView, ProviderOutcome
from assay.lookups.service import LookupFilter
from assay.providers.service import ProviderResult

router = APIRouter(prefix="/v1/lookups", tags=["lookups"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "The lookup; with Accept: text/event-stream, one `provider` event as "
        "each provider finishes, then `verdict` (the lookup) and `done`.",
    },
    409: {"description": "No verdict model (verdict-model-missing)"},
    422: {"description": "The indicator cannot be looked up (indicator-rejected)"},
}


def _provider_event(result: ProviderResult) -> ServerSentEvent:
    outcome = ProviderOutcome.model_validate(
        {**result.as_dict(), "status": str(result.status), "level": str(result.level)}
    )
    return ServerSentEvent(data=outcome.model_dump_json(), event="provider")


@router.post(
    "", summary="Look an indicator up across the organisation's providers", responses=_RESPONSES
)
async def create_lookup(
    body: LookupCreate,
    request: Request,
    principal: CanRunLookups,
    _limit: RateLimitScoring,
    lookups: Lookups,
    accept: Annotated[str | None, Header(max_length=1000)] = None,
) -> LookupView:
    indicator, configured, served = await lookups.prepare(principal, body.indicator, body.providers)
    request_id = request.scope.get("state", {}).get("request_id")
    events = lookups.run(
        principal,
        indicator,
        configured,
        served,
        force_refresh=body.force_refresh,
        request_id=request_id,
    )
    if accept is not None and "text/event-stream" in accept:

        async def stream() -> AsyncIterator[ServerSentEvent]:
            async for item in events:
                if isinstance(item, Lookup):
                    view = LookupView.of(item)
                    yield ServerSentEvent(data=view.model_dump_json(), event="verdict")
                else:
                    yield _provider_event(item)
            yield ServerSentEvent(data=json.dumps({"done": True}), event="done")

        return EventSourceResponse(stream(), headers={"Cache-Control": "no-store"})  # type: ignore[return-value]
    final: Lookup | None = None
    async for item in events:
        if isinstance(item, Lookup):
            final = item
    assert final is not None  # noqa: S101 - run() always ends with the lookup
    return LookupView.of(final)


@router.get("", summary="Past lookups of this organisation, newest first")
async def list_lookups(
    request: Request,
    reads: AuditedReads,
    principal: CanReadLookups,
    _limit: RateLimitManagement,
    db: DbSession,
    lookups: Lookups,
    indicator: Annotated[
        str | None, Query(max_length=4096, description="Canonicalised before matching.")
    ] = None,
    indicator_type: Annotated[str | None, Query(alias="type", max_length=16)] = None,
    verdict: Annotated[str | None, Query(max_length=40)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> LookupPage:
    rows, next_cursor = await lookups.history(
        db,
        principal,
        LookupFilter(indicator, indicator_type, verdict, since, until),
        cursor=cursor,
        limit=limit,
    )
    reads.note(
        RequestMeta.of(request),
        principal,
        SecurityAction.LOOKUP_RESULTS_READ,
        target_kind="lookup",
        details={"lookups": len(rows)},
    )
    return LookupPage(items=[LookupView.of(row) for row in rows], next_cursor=next_cursor)


@router.get("/{lookup_id}", summary="One past lookup")
async def get_lookup(
    lookup_id: uuid.UUID,
    request: Request,
    reads: AuditedReads,
    principal: CanReadLookups,
    _limit: RateLimitManagement,
    db: DbSession,
    lookups: Lookups,
) -> LookupView:
    lookup = await lookups.get(db, principal, lookup_id)
    reads.note(
        RequestMeta.of(request),
        principal,
        SecurityAction.LOOKUP_RESULTS_READ,
        target_kind="lookup",
        target_id=lookup.id,
    )
    return LookupView.of(lookup)
