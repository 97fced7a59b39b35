"""/v1/webhooks: endpoints, their secrets, test messages and the delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from assay.audit.service import RequestMeta
from assay.core.db import DbSession
from assay.core.paging import Cursor
from assay.http.rate_limit import RateLimitManagement
from assay.webhooks import service as webhooks
from assay.webhooks.deps import CanManageWebhooks, CanReadWebhooks, Webhooks
from assay.webhooks.models import DeliveryState
from assay.webhooks.schemas import (
    AttemptView,
    DeliveryDetail,
    DeliveryPage,
    DeliveryView,
    EventTypeView,
    WebhookCreate,
    WebhookCreated,
    WebhookSecretIssued,
    WebhookUpdate,
    WebhookView,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
_URL_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "An unknown event type (validation-failed), or a URL that may not be "
        "called (webhook-destination-refused)"
    }
}
_DISABLED: dict[int | str, dict[str, Any]] = {
    409: {"description": "The endpoint is disabled, or the delivery is under way"}
}


def _view(endpoint: object) -> WebhookView:
    return WebhookView.model_validate(endpoint, from_attributes=True)


@router.get("/event-types", summary="Event types an endpoint can subscribe to")
async def list_event_types(
    _principal: CanReadWebhooks, _limit: RateLimitManagement
) -> list[EventTypeView]:
    return [
        EventTypeView(name=name, description=description)
        for name, description in webhooks.subscribable_event_types().items()
    ]


@router.get("", summary="Webhook endpoints of this organisation")
async def list_webhooks(
    principal: CanReadWebhooks, _limit: RateLimitManagement, db: DbSession
) -> list[WebhookView]:
    return [_view(e) for e in await webhooks.list_endpoints(db, principal)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook endpoint (its signing secret is shown once)",
    responses=_URL_REFUSED,
)
async def create_webhook(
    body: WebhookCreate,
    request: Request,
    principal: CanManageWebhooks,
    _limit: RateLimitManagement,
    db: DbSession,
    runtime: Webhooks,
) -> WebhookCreated:
    created = await webhooks.create_endpoint(
        db,
        runtime,
        RequestMeta.of(request),
        principal,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return WebhookCreated(**_view(created.endpoint).model_dump(), secret=created.secret)


@router.get("/{webhook_id}", summary="One webhook endpoint")
async def get_webhook(
    webhook_id: uuid.UUID, principal: CanReadWebhooks, _limit: RateLimitManagement, db: DbSession
) -> WebhookView:
    return _view(await webhooks.get_endpoint(db, principal, webhook_id))


@router.patch("/{webhook_id}", summary="Change a webhook endpoint", responses=_URL_REFUSED)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    request: Request,
    principal: CanManageWebhooks,
    _limit: RateLimitManagement,
    db: DbSession,
    runtime: Webhooks,
) -> WebhookView:
    endpoint = await webhooks.update_endpoint(
        db,
        runtime,
        RequestMeta.of(request),
        principal,
        webhook_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return _view(endpoint)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook endpoint and its delivery log",
)
async def delete_webhook(
    webhook_id: uuid.UUID,
    request: Request,
    principal: CanManageWebhooks,
    _limit: RateLimitManagement,
    db: DbSession,
) -> None:
    await webhooks.delete_endpoint(db, RequestMeta.of(request), principal, webhook_id)


@router.post(
    "/{webhook_id}/rotate-secret",
    summary="Issue a new signing secret; the previous one signs too for the grace period",
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID,
    request: Request,
    principal: CanManageWebhooks,
    _limit: RateLimitManagement,
    db: DbSession,
    runtime: Webhooks,
) -> WebhookSecretIssued:
    rotated = await webhooks.rotate_secret(
        db, runtime, RequestMeta.of(request), principal, webhook_id
    )
    return WebhookSecretIssued(
        secret=rotated.secret, previous_secret_expires_at=rotated.previous_expires_at
    )


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a webhook.test message to this endpoint",
    responses=_DISABLED,
)
async def send_webhook_test_message(
    webhook_id: uuid.UUID,
    principal: CanManageWebhooks,
    _limit: RateLimitManagement,
    db: DbSession,
) -> DeliveryView:
    delivery = await webhooks.send_test(db, principal, webhook_id)
    return DeliveryView.model_validate(delivery, from_attributes=True)


@router.get("/{webhook_id}/deliveries", summary="The endpoint's delivery log, newest first")
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    principal: CanReadWebhooks,
    _limit: RateLimitManagement,
    db: DbSession,
    state: DeliveryState | None = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    rows, next_cursor = await webhooks.list_deliveries(
        db, principal, webhook_id, state=state, cursor=cursor, limit=limit
    )
    return DeliveryPage(
        items=[DeliveryView.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


@router.get("/{webhook_id}/deliveries/{delivery_id}", summary="One delivery, with every attempt")
async def get_webhook_delivery(
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: CanReadWebhooks,
    _limit: RateLimitManagement,
    db: DbSession,
) -> DeliveryDetail:
    delivery, attempts = await webhooks.get_delivery(db, principal, webhook_id, delivery_id)
    return DeliveryDetail(
        **DeliveryView.model_validate(delivery, from_attributes=True).model_dump(),
        attempts_log=[AttemptView.model_validate(a, from_attributes=True) for a in attempts],
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a logged delivery again",
    responses=_DISABLED,
)
async def resend_webhook_delivery(
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: CanManageWebhooks,
    _limit: RateLimitManagement,
    db: DbSession,
) -> DeliveryView:
    delivery = await webhooks.resend_delivery(db, principal, webhook_id, delivery_id)
    return DeliveryView.model_validate(delivery, from_attributes=True)
