"""Platform administration: organisations (platform administrators only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from assay.audit.service import RequestMeta
from assay.auth.deps import Identity, PlatformAdmin
from assay.core.db import DbSession
from assay.core.permissions import OWNER_ROLE
from assay.http.rate_limit import RateLimitManagement
from assay.orgs import invitations
from assay.orgs import service as orgs
from assay.orgs.deps import Quotas
from assay.orgs.schemas import (
    OrganisationAdminUpdate,
    OrganisationCreate,
    OrganisationCreated,
    OrganisationView,
)

router = APIRouter(prefix="/v1/admin/orgs", tags=["platform"])


@router.get("", summary="All organisations")
async def list_orgs(
    principal: PlatformAdmin, _limit: RateLimitManagement, db: DbSession
) -> list[OrganisationView]:
    return [
        OrganisationView.model_validate(org, from_attributes=True)
        for org in await orgs.list_organisations(db)
    ]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an organisation; with owner_email, invite its first owner",
)
async def create_org(
    body: OrganisationCreate,
    request: Request,
    principal: PlatformAdmin,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> OrganisationCreated:
    meta = RequestMeta.of(request)
    org = await orgs.create_organisation(db, meta, principal, name=body.name, slug=body.slug)
    invitation_id = None
    if body.owner_email is not None:
        # The usual invitation: the owner sets a password (or confirms theirs) by the link.
        invitation = await invitations.invite(
            db, identity, meta, principal, org, email=body.owner_email, role=OWNER_ROLE
        )
        invitation_id = invitation.id
    view = OrganisationView.model_validate(org, from_attributes=True)
    return OrganisationCreated(**view.model_dump(), owner_invitation_id=invitation_id)


@router.patch(
    "/{org_id}",
    summary="Change an organisation's scoring quota",
    responses={422: {"description": "The quota is not in limits notation"}},
)
async def update_org_quota(
    org_id: uuid.UUID,
    body: OrganisationAdminUpdate,
    request: Request,
    principal: PlatformAdmin,
    _limit: RateLimitManagement,
    db: DbSession,
    quotas: Quotas,
) -> OrganisationView:
    org = await orgs.update_organisation(
        db,
        quotas,
        RequestMeta.of(request),
        principal,
        org_id,
        body.model_dump(exclude_unset=True),
    )
    return OrganisationView.model_validate(org, from_attributes=True)


@router.post("/{org_id}/suspend", summary="Suspend: its principals are refused at once")
async def suspend_org(
    org_id: uuid.UUID,
    request: Request,
    principal: PlatformAdmin,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> OrganisationView:
    org = await orgs.set_organisation_status(
        db, identity, RequestMeta.of(request), principal, org_id, "suspended"
    )
    return OrganisationView.model_validate(org, from_attributes=True)


@router.post("/{org_id}/resume", summary="Lift a suspension")
async def resume_org(
    org_id: uuid.UUID,
    request: Request,
    principal: PlatformAdmin,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> OrganisationView:
    org = await orgs.set_organisation_status(
        db, identity, RequestMeta.of(request), principal, org_id, "active"
    )
    return OrganisationView.model_validate(org, from_attributes=True)


@router.delete(
    "/{org_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete (soft) an organisation"
)
async def delete_org(
    org_id: uuid.UUID,
    request: Request,
    principal: PlatformAdmin,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> None:
    await orgs.delete_organisation(db, identity, RequestMeta.of(request), principal, org_id)
