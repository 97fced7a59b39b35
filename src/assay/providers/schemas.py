"""Request and response bodies of /v1/providers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from assay.core.schemas import StrictRequest


class ProviderSave(StrictRequest):
    definition: dict[str, Any] = Field(
        description="An assay-provider/v1 document (docs/threat-intel.md, 'Providers')."
    )
    enabled: bool = True


class ProviderCredentialSet(StrictRequest):
    credential: str | None = Field(
        min_length=1,
        max_length=4096,
        description="The provider's API key; null clears it. Write-only: never shown again.",
    )


class BreakerStatus(BaseModel):
    state: str = Field(description="closed, open or half_open")
    recent_failures: int
    cooldown_until: datetime | None = Field(
        description="When the provider asked to slow down (429): until when it is not called."
    )


class ProviderView(BaseModel):
    name: str
    title: str
    description: str
    supports: list[str]
    base_url: str = Field(description="Where it is called (an operator setting may replace it).")
    enabled: bool
    credential_required: bool
    credential_set: bool
    credential_updated_at: datetime | None
    rate_limit: str | None
    breaker: BreakerStatus
    created_at: datetime
    updated_at: datetime


class ProviderDetail(ProviderView):
    definition: dict[str, Any]


class ProviderHealth(BaseModel):
    healthy: bool
    detail: str = Field(description="What the check saw: the status it got, or what failed.")
