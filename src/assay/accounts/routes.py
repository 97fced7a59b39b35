"""Routes of the email flows: password reset, verification, invitations and sign-up.

The /v1/auth routes here are public (listed in public_routes.py); the invitation
management routes need `members:manage` in the caller's organisation.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status

from assay.accounts import email_tokens
from assay.accounts import service as email_flows
from assay.accounts.schemas import (
    Accepted,
    AcceptInvitationRequest,
    ForgotPasswordRequest,
    InvitationAccepted,
    InvitationCreate,
    InvitationView,
    ResetPasswordRequest,
    SignupRequest,
    VerifyEmailRequest,
)
from assay.audit.service import RequestMeta
from assay.auth.context import IdentityContext
from assay.auth.deps import identity_of, require
from assay.core.db import DbSession
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.http.rate_limit import RateLimitAuth, RateLimitManagement, limit_auth_account
from assay.orgs import invitations

auth_email_router = APIRouter(prefix="/v1/auth", tags=["auth"])
invitations_router = APIRouter(prefix="/v1/org/invitations", tags=["organisation"])
EMAIL_ROUTERS = (auth_email_router, invitations_router)

Identity = Annotated[IdentityContext, Depends(identity_of)]


async def _limit_token_holder(
    request: Request, db: DbSession, purposes: tuple[str, ...], token: str
) -> None:
    """Charge the per-account budget of whoever the link was sent to (as login does).

    An unknown token names no account: only the per-address limit applies to it, and
    guessing a 256-bit token is hopeless anyway.
    """
    holder = await email_tokens.holder(db, purposes, token)
    if holder is not None:
        await limit_auth_account(request, holder)


CanManageMembers = Annotated[OrgPrincipal, Depends(require(Permission.MEMBERS_MANAGE))]

_INVALID_LINK: dict[int | str, dict[str, Any]] = {
    400: {"description": "The link is unknown, expired, used or replaced (one answer for all)"}
}
_POLICY: dict[int | str, dict[str, Any]] = {
    422: {"description": "The password breaks a rule of the policy; `errors` names each rule"}
}
FORGOT_ANSWER = (
    "If an account uses that address, a link to reset its password is on its way. "
    "The link is valid for a short time and works once."
)
SIGNUP_ANSWER = "Check your mailbox: follow the link we sent to confirm the address, then sign in."


@auth_email_router.post(
    "/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a password-reset link (same answer whether or not the account exists)",
    responses={429: {"description": "Too many requests from this client or for this address"}},
)
async def forgot_password(
    body: ForgotPasswordRequest,
    request: Request,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> Accepted:
    # Per address as well as per client: nobody's inbox can be flooded from many hosts.
    await limit_auth_account(request, body.email)
    await email_flows.request_password_reset(db, identity, RequestMeta.of(request), body.email)
    return Accepted(detail=FORGOT_ANSWER)


@auth_email_router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with a reset link (signs out everywhere; MFA stays)",
    responses={**_INVALID_LINK, **_POLICY},
)
async def reset_password(
    body: ResetPasswordRequest,
    request: Request,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> None:
    await _limit_token_holder(request, db, (email_tokens.RESET,), body.token)
    await email_flows.reset_password(
        db, identity, RequestMeta.of(request), token=body.token, new_password=body.new_password
    )


@auth_email_router.post(
    "/email/verify",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm an email address (a new account's, or an email change) with its link",
    responses=_INVALID_LINK,
)
async def verify_email(
    body: VerifyEmailRequest,
    request: Request,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> None:
    await _limit_token_holder(
        request, db, (email_tokens.VERIFY, email_tokens.EMAIL_CHANGE), body.token
    )
    await email_flows.verify_email(db, identity, RequestMeta.of(request), body.token)


@auth_email_router.post(
    "/invitations/accept",
    summary="Accept an invitation (creates the account if the address has none)",
    responses={
        **_INVALID_LINK,
        **_POLICY,
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
    await _limit_token_holder(request, db, (email_tokens.INVITE,), body.token)
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
        raise email_flows.SignupDisabled


@auth_email_router.post(
    "/signup",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Create an account and organisation (when self sign-up is enabled)",
    dependencies=[Depends(_signup_enabled)],
    responses={
        **_POLICY,
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
    await email_flows.sign_up(
        db,
        identity,
        RequestMeta.of(request),
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        organisation_name=body.organisation_name,
    )
    return Accepted(detail=SIGNUP_ANSWER)


# --- invitation management -----------------------------------------------------------------


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
