"""Request and response bodies of /v1/lookups."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import StrictRequest
from assay.lookups.models import Lookup

ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$", max_length=40)]


class LookupCreate(StrictRequest):
    indicator: str = Field(
        min_length=1,
        max_length=4096,
        description="An IP address, domain, URL, e-mail address or MD5/SHA-1/SHA-256 hash; "
        "defanged forms (hxxps://evil[.]example) are read as meant.",
    )
    providers: list[ProviderName] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Ask only these providers (default: every enabled one).",
    )
    force_refresh: bool = Field(
        default=False, description="Ask the providers again even where a cached answer is fresh."
    )


class ProviderOutcome(BaseModel):
    provider: str
    status: Literal[
        "ok",
        "no_data",
        "timeout",
        "error",
        "circuit_open",
        "rate_limited",
        "unsupported",
        "not_configured",
    ]
    score: float | None = Field(description="0-100, when status is ok.")
    level: Literal["info", "safe", "suspicious", "malicious"]
    evidence: str
    fields: dict[str, Any] = Field(description="What the provider's answer said, normalised.")
    link: str | None
    detail: str = Field(description="Why, when the status is not ok.")
    latency_ms: float
    cached: bool
    age_seconds: float | None = Field(description="Age of a cached answer.")
    weight: float | None = Field(default=None, description="Its weight in the verdict model.")
    effective_weight: float | None = Field(
        default=None, description="Its weight after the weight of silent providers was shared."
    )
    contribution: float | None = Field(
        default=None, description="Points of the verdict score (0-100) it contributed."
    )


class LookupView(BaseModel):
    id: uuid.UUID
    indicator: str = Field(description="The canonical form that was looked up.")
    indicator_type: str
    verdict: str = Field(description="malicious, suspicious, clean, or unknown (no answer).")
    score: float | None = Field(description="0-100")
    model: str | None = Field(description="The verdict model's name@version.")
    redistributed: bool = Field(
        description="Some providers gave no score; their weight went to the others."
    )
    results: list[ProviderOutcome]
    duration_ms: float
    created_by: str | None
    created_at: datetime

    @classmethod
    def of(cls, lookup: Lookup) -> LookupView:
        return cls.model_validate(lookup, from_attributes=True)


class LookupPage(BaseModel):
    items: list[LookupView]
    next_cursor: str | None
