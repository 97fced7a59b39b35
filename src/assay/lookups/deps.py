"""Dependencies of the lookup routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.lookups.service import LookupService


def _service(request: Request) -> LookupService:
    service: LookupService = request.app.state.lookups
    return service


Lookups = Annotated[LookupService, Depends(_service)]
CanRunLookups = Annotated[OrgPrincipal, Depends(require(Permission.LOOKUPS_RUN))]
CanReadLookups = Annotated[OrgPrincipal, Depends(require(Permission.LOOKUPS_READ))]
