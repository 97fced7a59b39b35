"""Webhook tables: endpoints, their signing secrets, deliveries and every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.sealed import register_sealed_column
from assay.core.tenancy import TenantOwned

# Eight bytes everywhere: FLOAT already is on SQLite and PostgreSQL; MariaDB's is four.
_DOUBLE = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its first attempt
    DELIVERING = "delivering"  # leased by a dispatcher, being sent
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the last attempt failed; another is scheduled
    DEAD = "dead"  # no further attempt: retries exhausted, 410 Gone, endpoint disabled


class WebhookEndpoint(TenantOwned, Base):
    """A URL an organisation wants events POSTed to."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Consecutive failed attempts; a success resets it, a long run disables the endpoint.
    failure_streak: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookSecret(TenantOwned, Base):
    """A signing secret (`whsec_…`), sealed; a rotated one keeps signing until it expires."""

    __tablename__ = "webhook_secrets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    # AES-GCM under the keyring, bound to the organisation, endpoint and this row.
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # None while current; set at rotation to the end of the grace period.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookDelivery(TenantOwned, Base):
    """One event for one endpoint: its state, schedule, lease and last outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        # The dispatcher's question: which deliveries are due?
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        # The delivery log: one endpoint's deliveries, newest first.
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_latency_ms: Mapped[float | None] = mapped_column(_DOUBLE, nullable=True)
    last_response_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookAttempt(TenantOwned, Base):
    """One try at sending a delivery, as it went."""

    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(_DOUBLE, nullable=True)
    response_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))


class WebhookFanOut(TenantOwned, Base):
    """Marks an event as fanned out into deliveries, so each is fanned out once.

    A marker per event, not a time cursor: transactions commit out of order, so an event
    with an earlier timestamp can appear after a later one was already handled.
    """

    __tablename__ = "webhook_fan_outs"

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    fanned_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def webhook_secret_aad(org_id: uuid.UUID, endpoint_id: uuid.UUID, secret_id: uuid.UUID) -> bytes:
    """Associated data binding a sealed signing secret to its organisation, endpoint and row."""
    return f"webhook_secrets:{org_id}:{endpoint_id}:{secret_id}:secret".encode()


register_sealed_column(
    WebhookSecret,
    "secret_encrypted",
    ("org_id", "endpoint_id", "id"),
    lambda row: webhook_secret_aad(row.org_id, row.endpoint_id, row.id),
)
