"""Dependencies of the system routes: the application's `SystemService`, and who may
read system information and metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.system.service import SystemService


async def system_service(request: Request) -> SystemService:
    # Async on purpose: a plain `def` dependency would run in the thread pool.
    service: SystemService = request.app.state.system
    return service


System = Annotated[SystemService, Depends(system_service)]
CanReadSystem = Annotated[OrgPrincipal, Depends(require(Permission.SYSTEM_READ))]
