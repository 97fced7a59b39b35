"""Dependencies of the target routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.targets.service import TargetRegistry


def _registry(request: Request) -> TargetRegistry:
    registry: TargetRegistry = request.app.state.targets
    return registry


Targets = Annotated[TargetRegistry, Depends(_registry)]
# Those who scan choose among the targets, so they may list them (never their secrets).
CanReadTargets = Annotated[OrgPrincipal, Depends(require(Permission.SCANS_READ))]
CanManageTargets = Annotated[OrgPrincipal, Depends(require(Permission.TARGETS_MANAGE))]
