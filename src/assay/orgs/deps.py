"""What organisation routes depend on besides the principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.orgs.quotas import DatabaseQuotaOverrides


def quotas_of(request: Request) -> DatabaseQuotaOverrides:
    quotas: DatabaseQuotaOverrides = request.app.state.quotas
    return quotas


# The scoring quotas the rate limiter reads, built once per application (see create_app).
Quotas = Annotated[DatabaseQuotaOverrides, Depends(quotas_of)]
