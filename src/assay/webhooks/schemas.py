"""Request and response bodies of /v1/webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import StrictRequest

EventTypeName = Annotated[str, StringConstraints(min_length=3, max_length=100)]
EndpointUrl = Annotated[str, StringConstraints(min_length=8, max_length=2000)]
Description = Annotated[str, StringConstraints(max_length=500)]


class WebhookCreate(StrictRequest):
    url: EndpointUrl = Field(description="https URL events are POSTed to.")
    event_types: list[EventTypeName] = Field(
        min_length=1,
        max_length=50,
        description="Event types to send (GET /v1/webhooks/event-types).",
    )
    description: Description = ""
    enabled: bool = True


class WebhookUpdate(StrictRequest):
    url: EndpointUrl | None = None
    event_types: list[EventTypeName] | None = Field(default=None, min_length=1, max_length=50)
    description: Description | None = None
    enabled: bool | None = Field(
        default=None,
        description="Enabling a disabled endpoint clears its failure streak and reason.",
    )


class WebhookView(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    failure_streak: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class WebhookSecretIssued(BaseModel):
    secret: str = Field(
        description="The signing secret (whsec_…). Shown once; store it in the receiver now."
    )
    previous_secret_expires_at: datetime | None = Field(
        default=None,
        description="After a rotation: until when the previous secret still signs too.",
    )


class WebhookCreated(WebhookView):
    secret: str = Field(
        description="The signing secret (whsec_…). Shown once; store it in the receiver now."
    )


class EventTypeView(BaseModel):
    name: str
    description: str


class DeliveryView(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: float | None
    last_response_excerpt: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class AttemptView(BaseModel):
    attempted_at: datetime
    outcome: str
    status_code: int | None
    latency_ms: float | None
    response_excerpt: str | None
    error: str | None


class DeliveryDetail(DeliveryView):
    attempts_log: list[AttemptView] = Field(description="Every attempt, oldest first.")


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )
