"""Dependencies of the /v1/audit routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.audit_trail.sealing import Sealer
from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal


def _sealer(request: Request) -> Sealer:
    sealer: Sealer = request.app.state.audit_trail
    return sealer


CanReadAudit = Annotated[OrgPrincipal, Depends(require(Permission.AUDIT_READ))]
AuditTrail = Annotated[Sealer, Depends(_sealer)]
