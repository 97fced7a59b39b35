"""/v1/audit: the organisation's tamper-evident audit trail (docs/audit.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from assay.audit.service import RequestMeta
from assay.audit_trail import service as trail
from assay.audit_trail.deps import AuditTrail, CanReadAudit
from assay.audit_trail.schemas import EventPage, EventView, PublicKeyView, VerifyView
from assay.core.db import DbSession
from assay.core.paging import Cursor, PageLimit, Since, Until
from assay.http.rate_limit import RateLimitManagement

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Text = Annotated[str | None, Query(max_length=64)]
JSON_LINES = "application/jsonl"


@router.get("/events", summary="The organisation's audit events, newest first")
async def list_events(
    request: Request,
    principal: CanReadAudit,
    _limit: RateLimitManagement,
    db: DbSession,
    actor: Text = None,
    action: Text = None,
    target_kind: Text = None,
    target_id: Text = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> EventPage:
    where = trail.EventFilter(
        actor_id=actor,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    rows, next_cursor = await trail.events_page(
        db, principal, RequestMeta.of(request), where, cursor=cursor, limit=limit
    )
    return EventPage(
        items=[EventView.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=next_cursor,
    )


@router.get("/verify", summary="Recompute the organisation's chain and report its first problem")
async def verify(
    request: Request,
    principal: CanReadAudit,
    _limit: RateLimitManagement,
    db: DbSession,
    sealer: AuditTrail,
) -> VerifyView:
    return VerifyView.of(await trail.verify_for(sealer, db, principal, RequestMeta.of(request)))


@router.get(
    "/export",
    summary="The organisation's chain and signed checkpoints as JSON Lines",
    response_class=StreamingResponse,
    responses={200: {"content": {JSON_LINES: {}}, "description": "One JSON record a line."}},
)
async def export(
    request: Request,
    principal: CanReadAudit,
    _limit: RateLimitManagement,
    db: DbSession,
    sealer: AuditTrail,
) -> StreamingResponse:
    lines = trail.export_for(sealer, db, principal, RequestMeta.of(request))
    return StreamingResponse(
        lines,
        media_type=JSON_LINES,
        headers={"content-disposition": 'attachment; filename="audit-export.jsonl"'},
    )


@router.get("/public-key", summary="The Ed25519 public key that signs audit checkpoints")
async def public_key(
    _principal: CanReadAudit, _limit: RateLimitManagement, sealer: AuditTrail
) -> PublicKeyView:
    return PublicKeyView(key_id=sealer.signer.key_id, public_key_pem=sealer.signer.public_pem)
