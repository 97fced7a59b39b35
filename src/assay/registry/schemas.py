"""Request and response bodies of the scoring routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import StrictRequest

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


# Version numbers are stored in a 32-bit integer column on every database.
MAX_VERSION_NUMBER = 2_147_483_647


class ModelCreate(StrictRequest):
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


class AliasUpdate(StrictRequest):
    version: int = Field(ge=1, le=MAX_VERSION_NUMBER)


class AliasView(BaseModel):
    model: str
    alias: str
    version: int
