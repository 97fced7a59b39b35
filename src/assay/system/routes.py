"""Liveness and readiness probes (public, cheap, logged at debug level)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from assay.auth.deps import require
from assay.core.errors import DependencyUnavailable
from assay.core.metrics import exposition_registry
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.system.schemas import Health, Readiness
from assay.system.service import check_readiness

router = APIRouter(tags=["system"])
metrics_router = APIRouter(tags=["system"])
CanReadSystem = Annotated[OrgPrincipal, Depends(require(Permission.SYSTEM_READ))]


@router.get("/livez", summary="The process answers")
async def livez() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The database and cache answer",
    responses={503: {"description": "A dependency is unavailable"}},
)
async def readyz(request: Request) -> Readiness:
    state = request.app.state
    checks = await check_readiness(
        state.database, state.cache, state.settings.health_check_timeout_seconds
    )
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if failing:
        raise DependencyUnavailable(
            f"Not ready: {', '.join(failing)} did not answer.", extra={"checks": checks}
        )
    return Readiness(status="ok", checks=checks)


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (needs system:read)",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(principal: CanReadSystem) -> Response:
    # generate_latest walks the registry (with several workers, reads every worker's
    # files): small, but kept off the event loop anyway.
    body = await anyio.to_thread.run_sync(generate_latest, exposition_registry())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
