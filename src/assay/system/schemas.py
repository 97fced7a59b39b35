"""Response bodies of the system routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from assay.registry.schemas import LoadedModelView


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str]


class SystemInfo(BaseModel):
    version: str
    python: str
    runtimes: dict[str, str]
    database: str
    cache: str
    loaded_models: list[LoadedModelView]
    models: list[dict[str, Any]]
