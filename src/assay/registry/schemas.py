"""The registry's public value types: request and response bodies of the model and
publisher-key routes, and `VersionRef`, how any caller names a model version."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import StrictRequest
from assay.registry.models import ModelVersion

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=64)]

# Version numbers are stored in a 32-bit integer column on every database.
MAX_VERSION_NUMBER = 2_147_483_647
# A manifest is a small document; the artifact has the upload limit.
MAX_MANIFEST_CHARS = 1_000_000
DEFAULT_ALIAS = "production"


@dataclass(frozen=True, slots=True)
class VersionRef:
    """How a caller names a version: an alias or a number."""

    alias: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, alias: str | None, version: int | None) -> VersionRef:
        if version is not None:
            return cls(version=version)
        return cls(alias=alias or DEFAULT_ALIAS)


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

    @classmethod
    def of(cls, version: ModelVersion) -> VersionView:
        view = cls.model_validate(version, from_attributes=True)
        view.signed_by = version.signer_fingerprint
        return view


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


class PublisherKeyCreate(StrictRequest):
    name: str = Field(min_length=1, max_length=100)
    public_key: str = Field(
        min_length=40, max_length=100, description="Base64 of the 32-byte Ed25519 public key."
    )


class PublisherKeyView(BaseModel):
    fingerprint: str
    name: str
    public_key: str
    created_at: datetime
    revoked_at: datetime | None


class LoadedModelView(BaseModel):
    model: str
    version_id: uuid.UUID
    kind: str
    content_digest: str
