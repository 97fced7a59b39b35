"""Request and response bodies of /v1/watchlist."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from assay.core.schemas import StrictRequest


class WatchCreate(StrictRequest):
    indicator: str = Field(min_length=1, max_length=4096)
    interval_seconds: int = Field(
        default=86_400,
        ge=300,
        le=30 * 86_400,
        description="How often it is looked up again (5 minutes to 30 days; default a day).",
    )
    note: str = Field(default="", max_length=500)


class WatchView(BaseModel):
    id: uuid.UUID
    indicator: str
    indicator_type: str
    interval_seconds: int
    note: str
    last_verdict: str | None
    last_score: float | None
    last_lookup_id: uuid.UUID | None
    last_checked_at: datetime | None
    next_check_at: datetime
    created_by: str | None
    created_at: datetime


class WatchPage(BaseModel):
    items: list[WatchView]
    next_cursor: str | None
