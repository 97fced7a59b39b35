"""Dependencies of the watchlist routes (the lookup service does the looking up)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal

CanWatch = Annotated[OrgPrincipal, Depends(require(Permission.LOOKUPS_RUN))]
CanReadWatchlist = Annotated[OrgPrincipal, Depends(require(Permission.LOOKUPS_READ))]
