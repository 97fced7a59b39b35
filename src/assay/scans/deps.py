"""Dependencies of the scan routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.scans.service import ScanService


def _service(request: Request) -> ScanService:
    service: ScanService = request.app.state.scans
    return service


Scans = Annotated[ScanService, Depends(_service)]
CanRunScans = Annotated[OrgPrincipal, Depends(require(Permission.SCANS_RUN))]
CanReadScans = Annotated[OrgPrincipal, Depends(require(Permission.SCANS_READ))]
