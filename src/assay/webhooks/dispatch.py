"""Delivering webhooks: fan events out into deliveries, send the due ones, retry.

Two steps, each a plain async function of a sessionmaker, the settings and an outbound
client, safe to run in any number of processes at once:

- `fan_out_once` turns committed events (the `events` table is the outbox) into one
  delivery per enabled endpoint of the organisation subscribed to the type. A mark per
  event (`webhook_fan_outs`) and a unique (event, endpoint) pair make it idempotent.
- `deliver_due_once` claims due deliveries with a lease (SELECT … FOR UPDATE SKIP LOCKED
  where the database has it, then a compare-and-set on the row everywhere), sends each
  through the outbound guard with Standard Webhooks signatures, and records the attempt:
  success, a retry on the configured schedule (Retry-After honoured on 429 and 503), or
  dead. A 410, or a long run of failures, disables the endpoint.

`now` is a parameter so schedules can be tested without waiting; the signature's
timestamp is always the real time of sending, which is what receivers check it against.
`Dispatcher` runs both in a loop inside the app, woken by events published in this
process and otherwise polling.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prometheus_client import Counter, Histogram
from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.crypto import DecryptionError, Keyring
from assay.core.db_types import utcnow
from assay.core.logging import get_logger
from assay.core.periodic import PeriodicTask
from assay.core.tenancy import OrganisationScope, across_tenants, scoped
from assay.events import service as events
from assay.events.models import Event
from assay.outbound.errors import DestinationRefused, OutboundFailed
from assay.outbound.service import OutboundClient, OutboundResponse
from assay.settings import Settings
from assay.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFanOut,
    WebhookSecret,
)
from assay.webhooks.service import TEST_EVENT_TYPE
from assay.webhooks.signing import (
    message_body,
    message_id,
    response_excerpt,
    signed_headers,
    unseal_secret,
)

log = get_logger("assay.webhooks")

WEBHOOK_ATTEMPTS = Counter(
    "assay_webhook_attempts",
    "Webhook delivery attempts, by the delivery's state after the attempt "
    "(succeeded, failed: a retry is scheduled, dead: no retry).",
    ["state"],
)
WEBHOOK_LATENCY = Histogram(
    "assay_webhook_attempt_duration_seconds",
    "Time from connecting to a receiver to the end of its answer, for attempts it answered.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

Sessions = async_sessionmaker[AsyncSession]
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_DUE_STATES = (DeliveryState.PENDING, DeliveryState.FAILED)


def dispatcher_id() -> str:
    """Who holds a lease: host, process and a random part (two loops in one process)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- fan-out --------------------------------------------------------------------------


async def fan_out_once(
    sessions: Sessions, settings: Settings, *, now: datetime | None = None
) -> int:
    """Turn up to one batch of not yet fanned-out events into deliveries; how many events."""
    now = now or utcnow()
    async with sessions() as db:
        rows = await db.execute(
            across_tenants(
                select(Event.id, Event.org_id, Event.type, Event.created_at)
                .outerjoin(WebhookFanOut, WebhookFanOut.event_id == Event.id)
                .where(WebhookFanOut.event_id.is_(None))
                .order_by(Event.created_at)
                .limit(settings.webhook_batch_size),
                "the webhook dispatcher fans out every organisation's new events",
            )
        )
        pending = list(rows.all())
    for event_id, org_id, event_type, created_at in pending:
        try:
            async with sessions() as db, db.begin():
                await _fan_out_event(db, event_id, org_id, event_type, created_at, now)
        except IntegrityError:
            # Another dispatcher fanned it out at the same time; its rows stand.
            log.debug("webhook_fan_out_raced", event_id=str(event_id))
    return len(pending)


async def _fan_out_event(
    db: AsyncSession,
    event_id: uuid.UUID,
    org_id: uuid.UUID,
    event_type: str,
    created_at: datetime,
    now: datetime,
) -> None:
    targets: list[WebhookEndpoint] = []
    if event_type != TEST_EVENT_TYPE:
        endpoints = await db.execute(
            scoped(OrganisationScope(org_id), WebhookEndpoint).where(
                WebhookEndpoint.enabled.is_(True),
                # An endpoint hears of what happened after it was registered.
                WebhookEndpoint.created_at <= created_at,
            )
        )
        targets = [e for e in endpoints.scalars() if event_type in e.event_types]
    db.add(WebhookFanOut(event_id=event_id, org_id=org_id, deliveries=len(targets)))
    await db.flush()  # the mark first: a concurrent fan-out fails here, before any delivery
    for endpoint in targets:
        db.add(
            WebhookDelivery(
                id=uuid.uuid4(),
                org_id=org_id,
                event_id=event_id,
                endpoint_id=endpoint.id,
                event_type=event_type,
                state=DeliveryState.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )


# --- claiming -------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    return or_(
        and_(WebhookDelivery.state.in_(_DUE_STATES), WebhookDelivery.next_attempt_at <= now),
        # A dispatcher that died mid-send: its lease ran out, the delivery is anyone's.
        and_(
            WebhookDelivery.state == DeliveryState.DELIVERING,
            WebhookDelivery.lease_expires_at <= now,
        ),
    )


async def _claim(
    sessions: Sessions, settings: Settings, owner: str, now: datetime
) -> list[uuid.UUID]:
    lease_until = now + timedelta(seconds=settings.webhook_lease_seconds)
    claimed: list[uuid.UUID] = []
    async with sessions() as db:
        enabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
        candidates = (
            select(WebhookDelivery.id)
            .where(_due(now), WebhookDelivery.endpoint_id.in_(enabled))
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(settings.webhook_batch_size)
        )
        if db.get_bind().dialect.name in ("postgresql", "mysql", "mariadb"):
            # Rows another dispatcher is claiming are skipped, not waited for.
            candidates = candidates.with_for_update(skip_locked=True)
        reason = "the webhook dispatcher claims every organisation's due deliveries"
        ids = list((await db.execute(across_tenants(candidates, reason))).scalars())
        for delivery_id in ids:
            # Compare-and-set: only one dispatcher turns a due row into its lease (this
            # is what holds on SQLite, which has no row locks to skip).
            result = await db.execute(
                across_tenants(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, _due(now))
                    .values(
                        state=DeliveryState.DELIVERING,
                        lease_owner=owner,
                        lease_expires_at=lease_until,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False),
                    reason,
                )
            )
            if cast(CursorResult[Any], result).rowcount == 1:
                claimed.append(delivery_id)
        await db.commit()
    return claimed


# --- sending --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Message:
    delivery_id: uuid.UUID
    org_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    msg_id: str
    body: bytes
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    latency_ms: float | None
    excerpt: str | None
    error: str | None
    retry_after: float | None = None


async def _load_message(
    sessions: Sessions, keyring: Keyring, delivery_id: uuid.UUID, owner: str, now: datetime
) -> _Message | None:
    async with sessions() as db:
        delivery = (
            await db.execute(
                across_tenants(
                    select(WebhookDelivery).where(
                        WebhookDelivery.id == delivery_id, WebhookDelivery.lease_owner == owner
                    ),
                    "the webhook dispatcher reads a delivery it leased",
                )
            )
        ).scalar_one_or_none()
        if delivery is None:
            return None
        scope = OrganisationScope(delivery.org_id)
        endpoint = (
            await db.execute(
                scoped(scope, WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id)
            )
        ).scalar_one()
        event = (
            await db.execute(scoped(scope, Event).where(Event.id == delivery.event_id))
        ).scalar_one()
        rows = await db.execute(
            scoped(scope, WebhookSecret)
            .where(
                WebhookSecret.endpoint_id == endpoint.id,
                or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now),
            )
            .order_by(WebhookSecret.created_at.desc())
        )
        secrets: list[str] = []
        for row in rows.scalars():
            try:
                secrets.append(
                    unseal_secret(
                        keyring,
                        row.secret_encrypted,
                        org_id=row.org_id,
                        endpoint_id=row.endpoint_id,
                        secret_id=row.id,
                    )
                )
            except DecryptionError:
                log.exception("webhook_secret_unreadable", endpoint_id=str(endpoint.id))
        return _Message(
            delivery_id=delivery.id,
            org_id=delivery.org_id,
            endpoint_id=endpoint.id,
            url=endpoint.url,
            msg_id=message_id(event.id),
            body=message_body(event.type, event.created_at, event.data),
            secrets=tuple(secrets),
        )


def _retry_after_seconds(response: OutboundResponse, now: datetime) -> float | None:
    if response.status_code not in _RETRY_AFTER_STATUSES:
        return None
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


async def _send(
    outbound: OutboundClient, message: _Message, excerpt_bytes: int, now: datetime
) -> _Outcome:
    if not message.secrets:
        return _Outcome(None, None, None, "no signing secret could be read")
    # The real time of sending: receivers compare it with their own clock.
    sent_at = datetime.now(UTC)
    headers = signed_headers(message.secrets, message.msg_id, sent_at, message.body)
    try:
        response = await outbound.request(
            "POST", message.url, content=message.body, headers=headers
        )
    except DestinationRefused as exc:
        return _Outcome(None, None, None, f"destination refused: {exc.detail}"[:200])
    except OutboundFailed as exc:
        return _Outcome(None, None, None, f"{exc.reason}: {exc.detail}"[:200])
    error = None
    if 300 <= response.status_code < 400:
        error = "redirects are not followed; point the endpoint at the final URL"
    return _Outcome(
        status_code=response.status_code,
        latency_ms=round(response.elapsed_ms, 3),
        excerpt=response_excerpt(response.body, excerpt_bytes),
        error=error,
        retry_after=_retry_after_seconds(response, now),
    )


# --- recording ------------------------------------------------------------------------


async def _disable(
    db: AsyncSession, endpoint_id: uuid.UUID, org_id: uuid.UUID, reason: str, now: datetime
) -> None:
    result = await db.execute(
        across_tenants(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False),
            "the webhook dispatcher disables an endpoint of the delivery's organisation",
        )
    )
    if cast(CursorResult[Any], result).rowcount == 1:
        log.warning("webhook_endpoint_disabled", endpoint_id=str(endpoint_id), reason=reason)
        record_event(
            db,
            RequestMeta(user_agent="assay-webhooks"),
            action=SecurityAction.WEBHOOK_DISABLED,
            actor_kind="system",
            actor_id="webhooks",
            org_id=org_id,
            target_kind="webhook",
            target_id=endpoint_id,
            details={"reason": reason},
        )


async def _record(
    sessions: Sessions,
    settings: Settings,
    message: _Message,
    outcome: _Outcome,
    owner: str,
    now: datetime,
) -> str:
    succeeded = outcome.status_code is not None and 200 <= outcome.status_code < 300
    gone = outcome.status_code == 410
    async with sessions() as db, db.begin():
        scope = OrganisationScope(message.org_id)
        delivery = (
            await db.execute(
                scoped(scope, WebhookDelivery).where(WebhookDelivery.id == message.delivery_id)
            )
        ).scalar_one_or_none()
        if delivery is None or delivery.lease_owner != owner:
            # Deleted with its endpoint, or the lease ran out and someone else took it.
            return "lost"
        delivery.attempts += 1
        schedule = settings.webhook_retry_schedule_seconds
        if succeeded:
            state, next_at = DeliveryState.SUCCEEDED, None
            delivery.delivered_at = now
        elif gone or delivery.attempts > len(schedule):
            state, next_at = DeliveryState.DEAD, None
        else:
            delay = schedule[delivery.attempts - 1]
            if outcome.retry_after is not None:
                delay = max(
                    delay, min(outcome.retry_after, settings.webhook_max_retry_after_seconds)
                )
            state, next_at = DeliveryState.FAILED, now + timedelta(seconds=delay)
        delivery.state = state
        delivery.next_attempt_at = next_at
        delivery.lease_owner = None
        delivery.lease_expires_at = None
        delivery.last_status_code = outcome.status_code
        delivery.last_latency_ms = outcome.latency_ms
        delivery.last_response_excerpt = outcome.excerpt
        delivery.last_error = outcome.error
        delivery.updated_at = now
        db.add(
            WebhookAttempt(
                id=uuid.uuid4(),
                org_id=message.org_id,
                delivery_id=message.delivery_id,
                attempted_at=now,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                response_excerpt=outcome.excerpt,
                error=outcome.error,
                outcome="succeeded" if succeeded else "failed",
            )
        )
        await _count_on_endpoint(db, settings, message, succeeded=succeeded, gone=gone, now=now)
    return str(state)


async def _count_on_endpoint(
    db: AsyncSession,
    settings: Settings,
    message: _Message,
    *,
    succeeded: bool,
    gone: bool,
    now: datetime,
) -> None:
    reason = "the webhook dispatcher counts failures of the delivery's endpoint"
    streak = WebhookEndpoint.failure_streak
    # In the database, not read-modify-write: deliveries to one endpoint run in parallel.
    await db.execute(
        across_tenants(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == message.endpoint_id)
            .values(failure_streak=0 if succeeded else streak + 1)
            .execution_options(synchronize_session=False),
            reason,
        )
    )
    if succeeded:
        return
    if gone:
        await _disable(
            db, message.endpoint_id, message.org_id, "the endpoint answered 410 Gone", now
        )
        return
    current = (
        await db.execute(
            across_tenants(
                select(WebhookEndpoint.failure_streak).where(
                    WebhookEndpoint.id == message.endpoint_id
                ),
                reason,
            )
        )
    ).scalar_one()
    if current >= settings.webhook_disable_after_failures:
        await _disable(
            db,
            message.endpoint_id,
            message.org_id,
            f"{current} consecutive failed attempts",
            now,
        )


async def deliver_due_once(
    sessions: Sessions,
    settings: Settings,
    outbound: OutboundClient,
    keyring: Keyring,
    *,
    now: datetime | None = None,
    owner: str | None = None,
) -> int:
    """Claim up to one batch of due deliveries, send them, record each; how many sent."""
    now = now or utcnow()
    owner = owner or dispatcher_id()
    claimed = await _claim(sessions, settings, owner, now)
    if not claimed:
        return 0
    limit = asyncio.Semaphore(settings.webhook_concurrency)

    async def one(delivery_id: uuid.UUID) -> None:
        async with limit:
            message = await _load_message(sessions, keyring, delivery_id, owner, now)
            if message is None:
                return
            outcome = await _send(outbound, message, settings.webhook_response_excerpt_bytes, now)
            state = await _record(sessions, settings, message, outcome, owner, now)
            if state != "lost":
                WEBHOOK_ATTEMPTS.labels(state=state).inc()
            if outcome.latency_ms is not None:
                WEBHOOK_LATENCY.observe(outcome.latency_ms / 1000)
            log.info(
                "webhook_attempt",
                delivery_id=str(delivery_id),
                endpoint_id=str(message.endpoint_id),
                state=state,
                status=outcome.status_code,
                error=outcome.error,
            )

    results = await asyncio.gather(*(one(d) for d in claimed), return_exceptions=True)
    for delivery_id, result in zip(claimed, results, strict=True):
        if isinstance(result, BaseException):
            # The lease runs out and another pass takes it again.
            log.error("webhook_delivery_crashed", delivery_id=str(delivery_id), error=repr(result))
    return len(claimed)


# --- the in-process loop --------------------------------------------------------------


class Dispatcher:
    """Runs fan-out and delivery in this process until stopped.

    Woken at once by events published here (after their commit); otherwise it polls
    every `webhook_poll_interval_seconds`, which is how events from other processes and
    due retries are found.
    """

    def __init__(
        self,
        sessions: Sessions,
        settings: Settings,
        outbound: OutboundClient,
        keyring: Keyring,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.outbound = outbound
        self.keyring = keyring
        self.clock = clock
        self.owner = dispatcher_id()
        self._listener = f"webhooks:{self.owner}"
        self._loop = PeriodicTask(
            "webhook-dispatcher",
            self._busy_step,
            settings.webhook_poll_interval_seconds,
            failure_event="webhook_dispatch_failed",
        )

    def wake(self, _: events.Published | None = None) -> None:
        self._loop.wake()

    def start(self) -> None:
        events.listen(self._listener, self.wake)
        self._loop.start()

    async def stop(self) -> None:
        """Finish the step under way (its sends are bounded by the outbound timeout)."""
        events.unlisten(self._listener)
        await self._loop.stop()

    async def step(self) -> tuple[int, int]:
        now = self.clock()
        fanned = await fan_out_once(self.sessions, self.settings, now=now)
        sent = await deliver_due_once(
            self.sessions, self.settings, self.outbound, self.keyring, now=now, owner=self.owner
        )
        return fanned, sent

    async def _busy_step(self) -> bool:
        """A step; True when a batch was full or something was sent (more may be due)."""
        fanned, sent = await self.step()
        return fanned >= self.settings.webhook_batch_size or sent > 0
