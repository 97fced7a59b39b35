"""Request and response bodies of the identity routes.

Every request model forbids unknown fields, so `org_id`, `role` or `is_platform_admin`
smuggled into a body is a 422, never a silent mass assignment.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import AwareIsoDatetime, Name, Permission, StrictRequest


class ApiKeyCreate(StrictRequest):
    name: Name
    scopes: list[Permission] = Field(min_length=1, max_length=32)
    # With a time zone (or Z): a bare local time would be a guess about which one.
    expires_at: AwareIsoDatetime | None = None
    allowed_cidrs: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=32
    )
    signing_required: bool = False


class ApiKeyView(BaseModel):
    id: uuid.UUID
    key_id: str
    name: str
    scopes: list[str]
    allowed_cidrs: list[str]
    signing_required: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_address: str | None


class ApiKeyCreated(ApiKeyView):
    key: str = Field(description="The full key. Shown once; store it now.")
    signing_secret: str | None = Field(
        default=None,
        description=(
            "For keys with signing_required: the HMAC-SHA256 key (base64url) that signs "
            "requests. Shown once; store it now."
        ),
    )
