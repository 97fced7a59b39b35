"""Request and response bodies of the native predict route and the prediction records."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from assay.core.schemas import StrictRequest

# The response header saying what the prediction cache did for a single-record prediction.
CACHE_HEADER = "Assay-Cache"


class CacheOutcome(StrEnum):
    """What the prediction cache did for one prediction; the `Assay-Cache` header's value."""

    HIT = "hit"
    MISS = "miss"
    OFF = "off"
    ERROR = "error"


class PredictRequest(StrictRequest):
    """One record (`record`) or a batch (`records`), never both."""

    record: dict[str, Any] | None = None
    # Items are checked per row: one that is not an object is that row's error, not the
    # whole request's.
    records: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.record is None) == (self.records is None):
            raise ValueError("send either 'record' or 'records'")
        return self


class ModelRef(BaseModel):
    name: str
    version: int
    digest: str
    artifact_digest: str | None


class PredictionView(BaseModel):
    index: int
    score: float
    label: str | None
    risk: str | None
    derived: dict[str, Any]
    explanation: dict[str, Any] | None


class RowErrorView(BaseModel):
    index: int
    errors: list[dict[str, Any]]


class PredictResponse(BaseModel):
    model: ModelRef
    request_id: str | None
    results: list[PredictionView | RowErrorView]


class PredictionRecordView(BaseModel):
    id: uuid.UUID
    model_name: str
    version: int
    content_digest: str
    principal_kind: str
    principal_id: str
    request_id: str | None
    inputs: dict[str, Any]
    derived: dict[str, Any]
    score: float
    label: str | None
    risk: str | None
    latency_ms: float
    cache_hit: bool = Field(description="Answered from the prediction cache.")
    created_at: datetime


class RevealedInputs(BaseModel):
    record_id: uuid.UUID
    model_name: str
    inputs: dict[str, Any] = Field(description="Every input, the sealed ones opened.")
    sealed_fields: list[str] = Field(description="The fields that were sealed at rest.")


class PredictionPage(BaseModel):
    items: list[PredictionRecordView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )
