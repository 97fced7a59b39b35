"""Request and response bodies of the scoring routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from assay.core.schemas import StrictRequest

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


# Version numbers are stored in a 32-bit integer column on every database.
MAX_VERSION_NUMBER = 2_147_483_647


class Strict(StrictRequest):
    """Request bodies: no unknown fields, no coercion, no trimming (assay.core.schemas)."""


class ModelCreate(Strict):
    name: ModelName
    kind: Literal["ml", "rules", "ensemble"]
    description: Annotated[str, StringConstraints(max_length=1000)] = ""


class VersionView(BaseModel):
    version: int
    status: str
    status_reason: str | None
    content_digest: str
    artifact_digest: str | None
    artifact_format: str | None
    artifact_size: int | None
    signed_by: str | None = None
    created_at: datetime
    created_by: str | None


class ModelView(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    description: str
    created_at: datetime
    aliases: dict[str, int]
    versions: list[VersionView] = Field(default_factory=list)
    input_schema: dict[str, Any] | None = None


class AliasUpdate(Strict):
    version: int = Field(ge=1, le=MAX_VERSION_NUMBER)


class AliasView(BaseModel):
    model: str
    alias: str
    version: int


class PredictRequest(Strict):
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
    created_at: datetime


class PredictionPage(BaseModel):
    items: list[PredictionRecordView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class LoadedModelView(BaseModel):
    model: str
    version_id: uuid.UUID
    kind: str
    content_digest: str


class SystemInfo(BaseModel):
    version: str
    python: str
    runtimes: dict[str, str]
    database: str
    cache: str
    loaded_models: list[LoadedModelView]
    models: list[dict[str, Any]]
