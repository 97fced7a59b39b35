"""Trusted publisher keys of the caller's organisation, over the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from assay.audit.service import RequestMeta
from assay.auth.deps import require
from assay.core.db import DbSession
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scoped
from assay.http.rate_limit import RateLimitManagement
from assay.predictions.context import ScoringContext, scoring_of
from assay.registry import service
from assay.registry.models import PublisherKey

router = APIRouter(prefix="/v1/org/publisher-keys", tags=["models"])
CanManageKeys = Annotated[OrgPrincipal, Depends(require(Permission.KEYS_MANAGE))]
Scoring = Annotated[ScoringContext, Depends(scoring_of)]


class PublisherKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    public_key: str = Field(
        min_length=40, max_length=100, description="Base64 of the 32-byte Ed25519 public key."
    )


class PublisherKeyView(BaseModel):
    fingerprint: str
    name: str
    public_key: str
    created_at: datetime
    revoked_at: datetime | None


@router.get("", summary="Publisher keys whose signatures this organisation trusts")
async def list_keys(
    principal: CanManageKeys, _limit: RateLimitManagement, db: DbSession
) -> list[PublisherKeyView]:
    rows = await db.execute(scoped(principal, PublisherKey).order_by(PublisherKey.created_at))
    return [PublisherKeyView.model_validate(k, from_attributes=True) for k in rows.scalars()]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Trust a publisher key")
async def trust_key(
    body: PublisherKeyCreate,
    request: Request,
    principal: CanManageKeys,
    _limit: RateLimitManagement,
    db: DbSession,
) -> PublisherKeyView:
    key = await service.trust_key(
        db,
        RequestMeta.of(request),
        principal,
        principal.org_id,
        name=body.name,
        public_key=body.public_key,
    )
    return PublisherKeyView.model_validate(key, from_attributes=True)


@router.delete(
    "/{fingerprint}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop trusting a publisher key; the versions it signed stop serving",
)
async def revoke_key(
    fingerprint: Annotated[str, Path(max_length=64)],
    request: Request,
    principal: CanManageKeys,
    _limit: RateLimitManagement,
    db: DbSession,
    scoring: Scoring,
) -> None:
    changed = await service.revoke_key(
        db, RequestMeta.of(request), principal, principal.org_id, fingerprint
    )
    scoring.forget(changed)
