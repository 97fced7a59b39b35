"""Liveness and readiness probes (public, cheap, logged at debug level), the metrics
endpoint and the system information."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST

from assay.auth.deps import MetricsReader
from assay.core.db import DbSession
from assay.core.schemas import AwareIsoDatetime
from assay.http.rate_limit import RateLimitManagement
from assay.system.deps import CanReadSystem, System
from assay.system.schemas import Health, Readiness, SystemInfo, Usage

router = APIRouter(tags=["system"])
metrics_router = APIRouter(tags=["system"])
info_router = APIRouter(prefix="/v1/system", tags=["system"])


@router.get("/livez", summary="The process answers")
async def livez() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The database and cache answer",
    responses={503: {"description": "A dependency is unavailable"}},
)
async def readyz(system: System) -> Readiness:
    return Readiness(status="ok", checks=await system.require_ready())


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics of the whole platform (operators only)",
    description="Counters span every organisation, so this is for the platform's "
    "operators: a platform administrator, or a scraper sending the token configured in "
    "ASSAY_METRICS_TOKEN. An organisation's own usage is GET /v1/system/usage.",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(principal: MetricsReader, system: System) -> Response:
    return Response(await system.metrics_exposition(), media_type=CONTENT_TYPE_LATEST)


@info_router.get("/info", summary="Versions, runtimes, loaded models and their health")
async def system_info(
    principal: CanReadSystem, _limit: RateLimitManagement, db: DbSession, system: System
) -> SystemInfo:
    return await system.info(db, principal)


@info_router.get("/usage", summary="This organisation's scoring, per model version")
async def usage(
    principal: CanReadSystem,
    _limit: RateLimitManagement,
    db: DbSession,
    system: System,
    since: Annotated[
        AwareIsoDatetime | None,
        Query(description="Inclusive; RFC 3339 with a UTC offset. Default: 24 hours ago."),
    ] = None,
    until: Annotated[
        AwareIsoDatetime | None,
        Query(description="Exclusive; RFC 3339 with a UTC offset. Default: now."),
    ] = None,
) -> Usage:
    return await system.usage(db, principal, since, until)
