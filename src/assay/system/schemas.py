"""Response bodies of the system routes."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str]


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
