"""Joining an organisation: invitations (managed under /v1/org/invitations, accepted at
/v1/auth/invitations/accept) and self sign-up (/v1/auth/signup).

The /v1/auth routes here are public (listed in `assay.auth.public_routes`); managing
invitations needs `members:manage` in the caller's organisation.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from assay.accounts.schemas import (
    Accepted,
    AcceptInvitationRequest,
    InvitationAccepted,
    InvitationCreate,
    InvitationView,
    SignupRequest,
)
from assay.audit.service import RequestMeta
from assay.auth.deps import PASSWORD_POLICY_RESPONSES, Identity, require
from assay.core.db import DbSession
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.email_links import service as email_links
from assay.email_links.deps import INVALID_LINK_RESPONSES, limit_link_holder
from assay.http.rate_limit import RateLimitAuth, RateLimitManagement, limit_auth_account
from assay.orgs import invitations, signup

invitations_router = APIRouter(prefix="/v1/org/invitations", tags=["organisation"])
joining_router = APIRouter(prefix="/v1/auth", tags=["auth"])


CanManageMembers = Annotated[OrgPrincipal, Depends(require(Permission.MEMBERS_MANAGE))]
SIGNUP_ANSWER = "Check your mailbox: follow the link we sent to confirm the address, then sign in."


@joining_router.post(
    "/invitations/accept",
    summary="Accept an invitation (creates the account if the address has none)",
    responses={
        **INVALID_LINK_RESPONSES,
        **PASSWORD_POLICY_RESPONSES,
        401: {"description": "The address has an account and the password is not its own"},
        409: {"description": "Already a member, or the role offered no longer exists"},
    },
)
async def accept_invitation(
    body: AcceptInvitationRequest,
    request: Request,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> InvitationAccepted:
    await limit_link_holder(request, db, (email_links.INVITE,), body.token)
    org, role = await invitations.accept_invitation(
        db,
        identity,
        RequestMeta.of(request),
        token=body.token,
        password=body.password,
        display_name=body.display_name,
    )
    return InvitationAccepted(org_id=org.id, org_slug=org.slug, org_name=org.name, role=role)


def _signup_enabled(identity: Identity) -> None:
    # A dependency, so a disabled sign-up answers 404 before the body is even validated.
    if not identity.settings.signup_enabled:
        raise signup.SignupDisabled


@joining_router.post(
    "/signup",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Create an account and organisation (when self sign-up is enabled)",
    dependencies=[Depends(_signup_enabled)],
    responses={
        **PASSWORD_POLICY_RESPONSES,
        404: {"description": "Self sign-up is not enabled"},
        429: {"description": "Too many attempts from this client or for this address"},
    },
)
async def sign_up(
    body: SignupRequest,
    request: Request,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> Accepted:
    await limit_auth_account(request, body.email)
    await signup.sign_up(
        db,
        identity,
        RequestMeta.of(request),
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        organisation_name=body.organisation_name,
    )
    return Accepted(detail=SIGNUP_ANSWER)


@invitations_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Invite an email address with a role (no more than your own permissions)",
    responses={
        409: {"description": "The address already belongs to a member"},
        422: {"description": "Unknown role, or a role with permissions you do not have"},
    },
)
async def create_invitation(
    body: InvitationCreate,
    request: Request,
    principal: CanManageMembers,
    _limit: RateLimitManagement,
    db: DbSession,
    identity: Identity,
) -> InvitationView:
    invitation = await invitations.create_invitation(
        db, identity, RequestMeta.of(request), principal, email=body.email, role=body.role
    )
    return InvitationView.model_validate(invitation, from_attributes=True)


@invitations_router.get("", summary="Pending invitations of this organisation")
async def list_invitations(
    principal: CanManageMembers, _limit: RateLimitManagement, db: DbSession
) -> list[InvitationView]:
    return [
        InvitationView.model_validate(invitation, from_attributes=True)
        for invitation in await invitations.list_invitations(db, principal)
    ]


@invitations_router.delete(
    "/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a pending invitation (its link stops working at once)",
    responses={404: {"description": "No such pending invitation in this organisation"}},
)
async def revoke_invitation(
    invitation_id: uuid.UUID,
    request: Request,
    principal: CanManageMembers,
    _limit: RateLimitManagement,
    db: DbSession,
) -> None:
    await invitations.revoke_invitation(db, RequestMeta.of(request), principal, invitation_id)
