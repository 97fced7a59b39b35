"""Response bodies of the system routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

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


class ModelUsage(BaseModel):
    model: str
    version: int
    predictions: int = Field(description="Records scored in the window.")
    mean_latency_ms: float = Field(description="Mean time to score one request's records.")
    last_at: AwareDatetime = Field(description="When the latest of them was scored.")


class Usage(BaseModel):
    """This organisation's scoring in a window, from its own prediction records."""

    since: AwareDatetime
    until: AwareDatetime
    predictions: int
    models: list[ModelUsage]
