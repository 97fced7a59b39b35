"""Dependencies of the provider routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.providers.service import ProviderRegistry


def _registry(request: Request) -> ProviderRegistry:
    registry: ProviderRegistry = request.app.state.providers
    return registry


Providers = Annotated[ProviderRegistry, Depends(_registry)]
CanReadProviders = Annotated[OrgPrincipal, Depends(require(Permission.LOOKUPS_READ))]
CanManageProviders = Annotated[OrgPrincipal, Depends(require(Permission.PROVIDERS_MANAGE))]
