"""Webhook endpoints of an organisation: register, change, rotate, test, delivery log.

Every URL is checked by the outbound guard when it is registered or changed (and again
at every delivery, so a name that later resolves elsewhere is refused then too).
Secrets are shown once and stored sealed; a rotation keeps the previous secret signing
for the grace period. Creating, changing, deleting and rotating are security events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.crypto import Keyring
from assay.core.cursors import newest_first, page_of
from assay.core.db_types import utcnow
from assay.core.errors import Conflict, NotFound, ValidationFailed
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import HasOrganisation, scope_statement, scoped
from assay.events import service as events
from assay.outbound.errors import DestinationRefused
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.settings import Settings
from assay.webhooks.errors import WebhookDestinationRefused
from assay.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFanOut,
    WebhookSecret,
)
from assay.webhooks.signing import new_secret, seal_secret

TEST_EVENT_TYPE = "webhook.test"
events.register_event_type(
    TEST_EVENT_TYPE, "A test message, sent to one endpoint from POST /v1/webhooks/{id}/test."
)


@dataclass
class WebhookRuntime:
    """What the webhook routes and the dispatcher share in one process."""

    settings: Settings
    keyring: Keyring
    outbound: OutboundClient

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookRuntime:
        """For a process without the app (a job worker): settings with their secrets set."""
        if settings.encryption_key is None:
            msg = "the encryption key is not set (load settings with their generated secrets)"
            raise ValueError(msg)
        return cls(
            settings,
            Keyring.from_secret(settings.encryption_key.get_secret_value()),
            OutboundClient(OutboundPolicy.from_settings(settings)),
        )


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    secret: str
    previous_expires_at: datetime | None


def subscribable_event_types() -> dict[str, str]:
    """Event types an endpoint may subscribe to, with what each means."""
    return {
        name: event_type.description
        for name, event_type in sorted(events.event_types().items())
        if name != TEST_EVENT_TYPE
    }


def _check_event_types(event_types: list[str]) -> list[str]:
    known = subscribable_event_types()
    problems = [
        {
            "field": f"event_types.{index}",
            "code": "unknown_event_type",
            "message": "not an event type (see GET /v1/webhooks/event-types)",
        }
        for index, name in enumerate(event_types)
        if name not in known
    ]
    if problems:
        raise ValidationFailed("Unknown event types.", errors=problems)
    return sorted(set(event_types))


async def _check_url(outbound: OutboundClient, url: str) -> str:
    try:
        await outbound.check(url)
    except DestinationRefused as exc:
        raise WebhookDestinationRefused(
            f"The URL cannot be used: {exc.detail}.",
            errors=[{"field": "url", "code": exc.reason, "message": exc.detail}],
        ) from None
    return url


def _add_secret(
    db: AsyncSession, keyring: Keyring, endpoint: WebhookEndpoint, secret: str
) -> WebhookSecret:
    row_id = uuid.uuid4()
    row = WebhookSecret(
        id=row_id,
        org_id=endpoint.org_id,
        endpoint_id=endpoint.id,
        secret_encrypted=seal_secret(
            keyring, secret, org_id=endpoint.org_id, endpoint_id=endpoint.id, secret_id=row_id
        ),
        created_at=utcnow(),
    )
    db.add(row)
    return row


async def create_endpoint(
    db: AsyncSession,
    runtime: WebhookRuntime,
    meta: RequestMeta,
    principal: OrgPrincipal,
    *,
    url: str,
    event_types: list[str],
    description: str,
    enabled: bool,
) -> CreatedEndpoint:
    chosen = _check_event_types(event_types)
    await _check_url(runtime.outbound, url)
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        url=url,
        event_types=chosen,
        description=description,
        enabled=enabled,
        failure_streak=0,
        created_by=principal.actor_id,
        created_at=now,
        updated_at=now,
    )
    db.add(endpoint)
    secret = new_secret()
    _add_secret(db, runtime.keyring, endpoint, secret)
    await db.flush()
    record_event(
        db,
        meta,
        action=SecurityAction.WEBHOOK_CREATED,
        actor=principal,
        target_kind="webhook",
        target_id=endpoint.id,
        details={"url": url, "event_types": chosen},
    )
    return CreatedEndpoint(endpoint, secret)


async def list_endpoints(db: AsyncSession, principal: HasOrganisation) -> list[WebhookEndpoint]:
    rows = await db.execute(scoped(principal, WebhookEndpoint).order_by(WebhookEndpoint.created_at))
    return list(rows.scalars())


async def get_endpoint(
    db: AsyncSession, principal: HasOrganisation, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = (
        await db.execute(
            scoped(principal, WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        )
    ).scalar_one_or_none()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


async def update_endpoint(
    db: AsyncSession,
    runtime: WebhookRuntime,
    meta: RequestMeta,
    principal: OrgPrincipal,
    endpoint_id: uuid.UUID,
    *,
    url: str | None,
    event_types: list[str] | None,
    description: str | None,
    enabled: bool | None,
) -> WebhookEndpoint:
    endpoint = await get_endpoint(db, principal, endpoint_id)
    changed: dict[str, Any] = {}
    if url is not None and url != endpoint.url:
        endpoint.url = await _check_url(runtime.outbound, url)
        changed["url"] = url
    if event_types is not None:
        chosen = _check_event_types(event_types)
        if chosen != endpoint.event_types:
            endpoint.event_types = chosen
            changed["event_types"] = chosen
    if description is not None and description != endpoint.description:
        endpoint.description = description
        changed["description"] = True
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        changed["enabled"] = enabled
        if enabled:
            # A fresh start: the run of failures that disabled it is over.
            endpoint.failure_streak = 0
            endpoint.disabled_reason = None
        else:
            endpoint.disabled_reason = "disabled by a user"
    if changed:
        endpoint.updated_at = utcnow()
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.WEBHOOK_UPDATED,
            actor=principal,
            target_kind="webhook",
            target_id=endpoint.id,
            details=changed,
        )
    return endpoint


async def delete_endpoint(
    db: AsyncSession, meta: RequestMeta, principal: OrgPrincipal, endpoint_id: uuid.UUID
) -> None:
    endpoint = await get_endpoint(db, principal, endpoint_id)
    # Secrets, deliveries and attempts go with it (ON DELETE CASCADE, SQLite included).
    await db.delete(endpoint)
    await db.flush()
    record_event(
        db,
        meta,
        action=SecurityAction.WEBHOOK_DELETED,
        actor=principal,
        target_kind="webhook",
        target_id=endpoint.id,
        details={"url": endpoint.url},
    )


async def rotate_secret(
    db: AsyncSession,
    runtime: WebhookRuntime,
    meta: RequestMeta,
    principal: OrgPrincipal,
    endpoint_id: uuid.UUID,
) -> RotatedSecret:
    """A new current secret; the previous one signs too until the grace period ends."""
    endpoint = await get_endpoint(db, principal, endpoint_id)
    now = utcnow()
    grace_end = now + timedelta(seconds=runtime.settings.webhook_secret_grace_seconds)
    # Secrets already past their grace are of no use any more.
    await db.execute(
        scope_statement(
            principal,
            delete(WebhookSecret).where(
                WebhookSecret.endpoint_id == endpoint.id,
                WebhookSecret.expires_at.is_not(None),
                WebhookSecret.expires_at <= now,
            ),
            WebhookSecret,
        )
    )
    await db.execute(
        scope_statement(
            principal,
            update(WebhookSecret)
            .where(WebhookSecret.endpoint_id == endpoint.id)
            .where(or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > grace_end))
            .values(expires_at=grace_end)
            .execution_options(synchronize_session=False),
            WebhookSecret,
        )
    )
    secret = new_secret()
    _add_secret(db, runtime.keyring, endpoint, secret)
    endpoint.updated_at = now
    await db.flush()
    record_event(
        db,
        meta,
        action=SecurityAction.WEBHOOK_SECRET_ROTATED,
        actor=principal,
        target_kind="webhook",
        target_id=endpoint.id,
        details={"previous_valid_until": grace_end.isoformat()},
    )
    return RotatedSecret(secret, grace_end if grace_end > now else None)


async def send_test(
    db: AsyncSession, principal: OrgPrincipal, endpoint_id: uuid.UUID
) -> WebhookDelivery:
    """Queue a `webhook.test` message for this endpoint alone (sent after the commit)."""
    endpoint = await get_endpoint(db, principal, endpoint_id)
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled; enable it first.")
    event_id = await events.publish(
        db,
        org_id=principal.org_id,
        type=TEST_EVENT_TYPE,
        data={"webhook_id": str(endpoint.id), "message": "A test message from Assay."},
    )
    now = utcnow()
    # Marked as fanned out: a test message goes to this endpoint and no other.
    db.add(WebhookFanOut(event_id=event_id, org_id=principal.org_id, deliveries=1))
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        event_id=event_id,
        endpoint_id=endpoint.id,
        event_type=TEST_EVENT_TYPE,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    db.add(delivery)
    await db.flush()
    return delivery


async def list_deliveries(
    db: AsyncSession,
    principal: HasOrganisation,
    endpoint_id: uuid.UUID,
    *,
    state: DeliveryState | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[WebhookDelivery], str | None]:
    """One page of the endpoint's delivery log, newest first, and the next page's cursor."""
    endpoint = await get_endpoint(db, principal, endpoint_id)
    statement = scoped(principal, WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if state is not None:
        statement = statement.where(WebhookDelivery.state == state)
    statement = newest_first(statement, WebhookDelivery, cursor, limit)
    return page_of(list((await db.execute(statement)).scalars()), limit)


async def get_delivery(
    db: AsyncSession, principal: HasOrganisation, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    """One delivery of the endpoint, with every attempt made at it, oldest first."""
    endpoint = await get_endpoint(db, principal, endpoint_id)
    delivery = (
        await db.execute(
            scoped(principal, WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
            )
        )
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound("No such delivery for this endpoint.")
    attempts = await db.execute(
        scoped(principal, WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery.id)
        .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
    )
    return delivery, list(attempts.scalars())


async def resend_delivery(
    db: AsyncSession, principal: OrgPrincipal, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Send a logged delivery again: a new round of attempts, due now."""
    endpoint = await get_endpoint(db, principal, endpoint_id)
    delivery, _ = await get_delivery(db, principal, endpoint_id, delivery_id)
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled; enable it first.")
    if delivery.state in (DeliveryState.PENDING, DeliveryState.DELIVERING):
        raise Conflict("The delivery is still under way.")
    now = utcnow()
    delivery.state = DeliveryState.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.lease_owner = None
    delivery.lease_expires_at = None
    delivery.updated_at = now
    await db.flush()
    return delivery
