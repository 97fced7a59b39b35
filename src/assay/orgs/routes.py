"""The caller's organisation under /v1/org: its policy, members, roles and sessions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from assay.audit.deps import AuditedReads
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta
from assay.auth import service as auth
from assay.auth.deps import Identity, require
from assay.auth.schemas import SessionView
from assay.core.db import DbSession
from assay.core.errors import ValidationFailed
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.http.rate_limit import RateLimitManagement
from assay.orgs import members
from assay.orgs import service as orgs
from assay.orgs.schemas import (
    MemberUpdate,
    MemberView,
    OrganisationPolicyUpdate,
    OrganisationView,
    RoleCreate,
    RoleView,
    UnlockedView,
)

router = APIRouter(prefix="/v1/org", tags=["organisation"])


CanReadMembers = Annotated[OrgPrincipal, Depends(require(Permission.MEMBERS_READ))]
CanManageMembers = Annotated[OrgPrincipal, Depends(require(Permission.MEMBERS_MANAGE))]
CanManageRoles = Annotated[OrgPrincipal, Depends(require(Permission.ROLES_MANAGE))]
CanManageSessions = Annotated[OrgPrincipal, Depends(require(Permission.SESSIONS_MANAGE))]
CanManageOrg = Annotated[OrgPrincipal, Depends(require(Permission.ORG_MANAGE))]


@router.get("", summary="My organisation")
async def read_org(
    principal: CanReadMembers, _limit: RateLimitManagement, db: DbSession
) -> OrganisationView:
    org = await orgs.get_organisation(db, principal.org_id)
    return OrganisationView.model_validate(org, from_attributes=True)


@router.patch(
    "",
    summary="Change my organisation's name, MFA requirement and password minimum",
    responses={
        409: {"description": "You would require MFA of yourself without having enrolled"},
        422: {"description": "Unknown role, or a minimum below 15 without MFA required"},
    },
)
async def update_org(
    body: OrganisationPolicyUpdate,
    request: Request,
    principal: CanManageOrg,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> OrganisationView:
    changes = body.model_dump(exclude_unset=True)
    cleared = sorted(
        field
        for field, value in changes.items()
        if value is None and field != "min_password_length"
    )
    if cleared:
        raise ValidationFailed(
            f"{', '.join(cleared)} cannot be null.",
            errors=[{"field": f, "code": "null", "message": "cannot be null"} for f in cleared],
        )
    org = await orgs.update_policy(
        db, identity, RequestMeta.of(request), principal, principal.org_id, changes
    )
    return OrganisationView.model_validate(org, from_attributes=True)


@router.get("/members", summary="Members and their roles")
async def list_members(
    request: Request,
    reads: AuditedReads,
    principal: CanReadMembers,
    _limit: RateLimitManagement,
    db: DbSession,
) -> list[MemberView]:
    listed = await members.list_members(db, principal)
    reads.note(
        RequestMeta.of(request),
        principal,
        SecurityAction.MEMBERS_LISTED,
        target_kind="organisation",
        target_id=principal.org_id,
        details={"members": len(listed)},
    )
    return [
        MemberView(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=membership.role,
            joined_at=membership.created_at,
        )
        for membership, user in listed
    ]


@router.patch("/members/{user_id}", summary="Change a member's role")
async def change_role(
    user_id: uuid.UUID,
    body: MemberUpdate,
    request: Request,
    principal: CanManageMembers,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> MemberView:
    membership, user = await members.change_member_role(
        db, identity, RequestMeta.of(request), principal, user_id, body.role
    )
    return MemberView(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=membership.role,
        joined_at=membership.created_at,
    )


@router.delete(
    "/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member (ends their sessions in this organisation)",
)
async def remove_member(
    user_id: uuid.UUID,
    request: Request,
    principal: CanManageMembers,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> None:
    await members.remove_member(db, identity, RequestMeta.of(request), principal, user_id)


@router.post(
    "/members/{user_id}/unlock",
    summary="Unlock a member's account (failure counters and every lock, a hard one too)",
)
async def unlock_member(
    user_id: uuid.UUID,
    request: Request,
    principal: CanManageMembers,
    _limit: RateLimitManagement,
    db: DbSession,
) -> UnlockedView:
    before = await members.unlock_member(db, RequestMeta.of(request), principal, user_id)
    locked = before["hard_locked"] or before["password_locked"] or before["otp_locked"]
    return UnlockedView(user_id=user_id, was_locked=bool(locked))


@router.get("/roles", summary="Built-in and custom roles")
async def list_roles(
    principal: CanReadMembers, _limit: RateLimitManagement, db: DbSession
) -> list[RoleView]:
    return [
        RoleView(name=name, permissions=perms, builtin=builtin)
        for name, perms, builtin in await members.list_roles(db, principal)
    ]


@router.post("/roles", status_code=status.HTTP_201_CREATED, summary="Create a custom role")
async def create_role(
    body: RoleCreate,
    request: Request,
    principal: CanManageRoles,
    _limit: RateLimitManagement,
    db: DbSession,
) -> RoleView:
    role = await members.create_role(
        db,
        RequestMeta.of(request),
        principal,
        name=body.name,
        description=body.description,
        permissions=body.permissions,
    )
    return RoleView(name=role.name, permissions=role.permissions, builtin=False)


@router.get("/sessions", summary="Active sessions in this organisation")
async def list_sessions(
    principal: CanManageSessions, _limit: RateLimitManagement, db: DbSession
) -> list[SessionView]:
    return [
        SessionView.model_validate(s, from_attributes=True)
        for s in await auth.org_sessions(db, principal)
    ]


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End a member's session",
)
async def end_session(
    session_id: uuid.UUID,
    request: Request,
    principal: CanManageSessions,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> None:
    await auth.end_member_session(db, identity, RequestMeta.of(request), principal, session_id)
