"""Platform administration of the field-encryption data keys (platform admins only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from assay.audit.service import RequestMeta
from assay.auth.deps import PlatformAdmin
from assay.core.db import DbSession
from assay.http.rate_limit import RateLimitManagement
from assay.keys import service as keys
from assay.keys.deps import Keys
from assay.keys.schemas import DataKeyView, KeyringView, ReencryptionView, RotationView

router = APIRouter(prefix="/v1/admin/keys", tags=["platform"])


def _key_view(status_of: keys.KeyStatus) -> DataKeyView:
    key = status_of.key
    return DataKeyView(
        key_id=key.key_id,
        state=key.state,
        origin=key.origin,
        wrapped_by=key.wrapped_by,
        sealed=status_of.sealed,
        columns=status_of.columns,
        created_at=key.created_at,
        activated_at=key.activated_at,
        deactivated_at=key.deactivated_at,
        retired_at=key.retired_at,
    )


def _run_view(run: object) -> ReencryptionView:
    return ReencryptionView.model_validate(run, from_attributes=True)


@router.get("", summary="The data keys, what each still seals, and re-encryption progress")
async def keyring_status(
    principal: PlatformAdmin, _limit: RateLimitManagement, db: DbSession, maintenance: Keys
) -> KeyringView:
    found = await keys.status(db)
    return KeyringView(
        active_key_id=maintenance.keeper.keyring.active_key_id,
        keys=[_key_view(item) for item in found.keys],
        unknown=found.unknown,
        reencryptions=[_run_view(run) for run in found.runs],
    )


@router.post(
    "/rotate",
    status_code=status.HTTP_201_CREATED,
    summary="Make a new data key active and re-encrypt older values in the background",
)
async def rotate_key(
    request: Request,
    principal: PlatformAdmin,
    _limit: RateLimitManagement,
    db: DbSession,
    maintenance: Keys,
) -> RotationView:
    rotation = await keys.rotate(
        db, maintenance.keeper, RequestMeta.of(request), principal, wake=maintenance.wake
    )
    return RotationView(
        key=_key_view(keys.KeyStatus(rotation.key, 0, {})),
        previous_key_id=rotation.previous_key_id,
        reencryption=_run_view(rotation.run),
    )


@router.get("/reencryptions/{run_id}", summary="One re-encryption run's progress")
async def reencryption(
    run_id: uuid.UUID, principal: PlatformAdmin, _limit: RateLimitManagement, db: DbSession
) -> ReencryptionView:
    return _run_view(await keys.get_run(db, run_id))


@router.post(
    "/{key_id}/retire",
    summary="Erase a decrypt-only data key; refused while any value still uses it",
    responses={
        404: {"description": "No such data key"},
        409: {"description": "The key still seals values (counted), or cannot be retired now"},
    },
)
async def retire_key(
    key_id: str,
    request: Request,
    principal: PlatformAdmin,
    _limit: RateLimitManagement,
    db: DbSession,
    maintenance: Keys,
) -> DataKeyView:
    retired = await keys.retire(db, maintenance.keeper, RequestMeta.of(request), principal, key_id)
    return _key_view(keys.KeyStatus(retired.key, 0, {}))
