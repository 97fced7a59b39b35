"""Dependencies of the registry's routes: the application's `ModelRegistry`, and who
may read or change models and publisher keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.registry.service import ModelRegistry


async def model_registry(request: Request) -> ModelRegistry:
    # Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, and that
    # hop (a thread wake-up per request) costs more than the dependency itself.
    registry: ModelRegistry = request.app.state.registry
    return registry


Registry = Annotated[ModelRegistry, Depends(model_registry)]
CanReadModels = Annotated[OrgPrincipal, Depends(require(Permission.MODELS_READ))]
CanWriteModels = Annotated[OrgPrincipal, Depends(require(Permission.MODELS_WRITE))]
CanManageKeys = Annotated[OrgPrincipal, Depends(require(Permission.KEYS_MANAGE))]
