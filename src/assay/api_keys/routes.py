"""API keys of the caller's organisation: list, create (shown once), revoke."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from assay.api_keys import service as api_keys
from assay.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyView
from assay.audit.service import RequestMeta
from assay.auth.deps import Identity, require
from assay.core.db import DbSession
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.http.rate_limit import RateLimitManagement

router = APIRouter(prefix="/v1/org/api-keys", tags=["organisation"])
CanManageKeys = Annotated[OrgPrincipal, Depends(require(Permission.KEYS_MANAGE))]


@router.get("", summary="API keys of this organisation")
async def list_api_keys(
    principal: CanManageKeys, _limit: RateLimitManagement, db: DbSession
) -> list[ApiKeyView]:
    return [
        ApiKeyView.model_validate(key, from_attributes=True)
        for key in await api_keys.list_api_keys(db, principal)
    ]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (the key is shown once)",
)
async def create_api_key(
    body: ApiKeyCreate,
    request: Request,
    principal: CanManageKeys,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> ApiKeyCreated:
    created = await api_keys.create_api_key(
        db,
        identity,
        RequestMeta.of(request),
        principal,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        allowed_cidrs=body.allowed_cidrs,
        signing_required=body.signing_required,
    )
    view = ApiKeyView.model_validate(created.record, from_attributes=True)
    return ApiKeyCreated(
        **view.model_dump(), key=created.plaintext, signing_secret=created.signing_secret
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key (effective on the next request)",
)
async def revoke_api_key(
    key_id: uuid.UUID,
    request: Request,
    principal: CanManageKeys,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> None:
    await api_keys.revoke_api_key(db, identity, RequestMeta.of(request), principal, key_id)
