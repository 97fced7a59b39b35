"""`redteam_scan`: the job kind a scan runs as (one input row per planned attempt).

Started only through POST /v1/scans (which plans the rows and records the scan first),
never through /v1/jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.errors import Forbidden
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.jobs.models import Job
from assay.scans.schemas import SCAN_KIND, ScanJobParams

if TYPE_CHECKING:
    from assay.scans.attempts import ScanProcessor
    from assay.scans.service import ScanService


class ScanKind:
    name = SCAN_KIND
    params_model: type[BaseModel] = ScanJobParams
    submitted_as_job = False
    csv_columns = (
        "number",
        "probe_set",
        "probe_id",
        "transforms",
        "status",
        "hit",
        "detectors",
        "error",
    )

    def __init__(self, service: ScanService) -> None:
        self._service = service

    def csv_row(self, line: Mapping[str, Any]) -> list[Any]:
        detectors = line.get("detectors") or {}
        return [
            line.get("number"),
            line.get("probe_set"),
            line.get("probe_id"),
            "+".join(line.get("transforms") or []),
            line.get("status"),
            line.get("hit"),
            ";".join(f"{name}={score}" for name, score in detectors.items()),
            line.get("error"),
        ]

    async def check(self, principal: OrgPrincipal, params: BaseModel) -> None:
        if not principal.can(Permission.SCANS_RUN):
            raise Forbidden("Scans need the permission scans:run.")

    async def prepare(self, principal: OrgPrincipal, params: Mapping[str, Any]) -> ScanProcessor:
        return await self._service.processor(principal, uuid.UUID(str(params["scan_id"])))

    async def ended(self, db: AsyncSession, job: Job) -> None:
        await self._service.ended(db, job)
