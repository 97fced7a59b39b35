"""The signed-in user's own account under /v1/me (profile, password, email, sessions,
MFA), and the public emailed-link routes that recover or confirm an account
(/v1/auth/password/forgot, /v1/auth/password/reset, /v1/auth/email/verify)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from assay.accounts import email_flows
from assay.accounts import service as accounts
from assay.accounts.schemas import (
    Accepted,
    EmailChangeRequest,
    ForgotPasswordRequest,
    MeResponse,
    MeUpdate,
    PasswordChangeRequest,
    ResetPasswordRequest,
    VerifyEmailRequest,
)
from assay.audit.service import RequestMeta
from assay.auth import service as auth
from assay.auth.deps import (
    PASSWORD_POLICY_RESPONSES,
    AnyScope,
    Authenticated,
    Identity,
    session_answer,
)
from assay.auth.schemas import (
    BackupCodes,
    ConsoleSessionResponse,
    ReauthRequest,
    SessionView,
    TokenResponse,
    TotpConfirm,
    TotpEnrolment,
)
from assay.core.crypto import new_opaque_token
from assay.core.db import DbSession
from assay.core.errors import Forbidden
from assay.core.principal import MFA_ENROLMENT_SCOPE, PASSWORD_CHANGE_SCOPE, Principal
from assay.email_links import service as email_links
from assay.email_links.deps import INVALID_LINK_RESPONSES, limit_link_holder
from assay.http.rate_limit import RateLimitAuth, limit_auth_account

me_router = APIRouter(prefix="/v1/me", tags=["me"])
email_router = APIRouter(prefix="/v1/auth", tags=["auth"])

FORGOT_ANSWER = (
    "If an account uses that address, a link to reset its password is on its way. "
    "The link is valid for a short time and works once."
)


@me_router.get("", summary="Who am I")
async def read_me(principal: AnyScope, db: DbSession) -> MeResponse:
    user = await accounts.signed_in_user(db, principal)
    return MeResponse(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        org_id=principal.org_id,
        permissions=sorted(principal.permissions),
        mfa_enabled=user.mfa_enabled,
        is_platform_admin=user.is_platform_admin,
        scope=principal.scope,
    )


@me_router.patch("", summary="Update my display name")
async def update_me(body: MeUpdate, principal: Authenticated, db: DbSession) -> MeResponse:
    await accounts.update_profile(db, principal, display_name=body.display_name)
    return await read_me(principal, db)


@me_router.post(
    "/password",
    summary="Change my password (ends my other sessions)",
    description="Needs the current password, counted like a sign-in. Answers 204: this "
    "session goes on and every other one ends. After a forced change the restricted "
    "session is replaced instead, and the answer is 200 with new tokens, or for a console "
    "session a new cookie and CSRF token.",
    response_model=TokenResponse | ConsoleSessionResponse,
    responses={
        204: {"description": "Changed; this session goes on, every other one has ended"},
        422: {"description": "Wrong current password, or the new one breaks a rule"},
    },
)
async def change_password(
    body: PasswordChangeRequest,
    request: Request,
    response: Response,
    principal: AnyScope,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> TokenResponse | ConsoleSessionResponse | Response:
    if principal.scope not in (PASSWORD_CHANGE_SCOPE, "full"):
        raise Forbidden("Finish MFA enrolment first.")
    user = await accounts.signed_in_user(db, principal)
    await limit_auth_account(request, user.email)
    forced_console = principal.scope == PASSWORD_CHANGE_SCOPE and principal.auth_method == "cookie"
    cookie = new_opaque_token() if forced_console else None
    pair = await auth.change_password(
        db,
        identity,
        RequestMeta.of(request),
        principal,
        current_password=body.current_password,
        new_password=body.new_password,
        cookie=cookie,
    )
    if pair is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return session_answer(response, identity, pair, cookie)


@me_router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Change my email address (needs my password; confirmed from the new address)",
    responses={422: {"description": "The password is incorrect"}},
)
async def change_email(
    body: EmailChangeRequest,
    request: Request,
    principal: Authenticated,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> Accepted:
    user = await accounts.signed_in_user(db, principal)
    await limit_auth_account(request, user.email)
    await email_flows.request_email_change(
        db,
        identity,
        RequestMeta.of(request),
        principal,
        user,
        password=body.password,
        new_email=body.new_email,
    )
    return Accepted(detail=email_flows.EMAIL_CHANGE_ANSWER)


@me_router.get("/sessions", summary="My active sessions")
async def my_sessions(principal: Authenticated, db: DbSession) -> list[SessionView]:
    await accounts.signed_in_user(db, principal)
    return [
        SessionView.model_validate(s, from_attributes=True).model_copy(
            update={"current": s.id == principal.session_id}
        )
        for s in await auth.user_sessions(db, principal.id)
    ]


@me_router.delete(
    "/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, summary="End one session"
)
async def end_my_session(
    session_id: uuid.UUID,
    request: Request,
    principal: Authenticated,
    db: DbSession,
    identity: Identity,
) -> None:
    await accounts.signed_in_user(db, principal)
    await auth.end_own_session(db, identity, RequestMeta.of(request), principal, session_id)


def _enrolment_allowed(principal: Principal) -> None:
    if principal.scope not in (MFA_ENROLMENT_SCOPE, "full"):
        raise Forbidden("Change your password first.")


@me_router.post("/mfa/totp", summary="Start TOTP enrolment: secret, otpauth URI and QR code")
async def begin_totp(principal: AnyScope, db: DbSession, identity: Identity) -> TotpEnrolment:
    _enrolment_allowed(principal)
    await accounts.signed_in_user(db, principal)
    enrolment = await auth.begin_mfa_enrolment(db, identity, principal)
    return TotpEnrolment(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@me_router.post("/mfa/totp/confirm", summary="Confirm TOTP with a first code; get backup codes")
async def confirm_totp(
    body: TotpConfirm, request: Request, principal: AnyScope, db: DbSession, identity: Identity
) -> BackupCodes:
    _enrolment_allowed(principal)
    codes = await accounts.confirm_mfa_enrolment(
        db, identity, RequestMeta.of(request), principal, body.code
    )
    return BackupCodes(backup_codes=codes)


@me_router.post(
    "/mfa/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disable MFA (needs your password; refused where MFA is required)",
    responses={
        409: {"description": "MFA is required for you (platform admin or organisation rule)"},
        422: {"description": "The password is incorrect"},
    },
)
async def disable_mfa(
    body: ReauthRequest,
    request: Request,
    principal: Authenticated,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> None:
    user = await accounts.signed_in_user(db, principal)
    # Refused before the password is checked: a 409 spends none of the account's budget.
    await accounts.check_mfa_removable(db, user)
    await limit_auth_account(request, user.email)
    await accounts.disable_mfa(
        db, identity, RequestMeta.of(request), principal, user, body.password
    )


@me_router.post(
    "/mfa/backup-codes",
    summary="Replace my backup codes (needs your password)",
    responses={422: {"description": "The password is incorrect, or MFA is not enabled"}},
)
async def regenerate_backup_codes(
    body: ReauthRequest,
    request: Request,
    principal: Authenticated,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> BackupCodes:
    user = await accounts.signed_in_user(db, principal)
    await limit_auth_account(request, user.email)
    codes = await accounts.regenerate_backup_codes(
        db, identity, RequestMeta.of(request), principal, user, body.password
    )
    return BackupCodes(backup_codes=codes)


@email_router.post(
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


@email_router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with a reset link (signs out everywhere; MFA stays)",
    responses={**INVALID_LINK_RESPONSES, **PASSWORD_POLICY_RESPONSES},
)
async def reset_password(
    body: ResetPasswordRequest,
    request: Request,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> None:
    await limit_link_holder(request, db, (email_links.RESET,), body.token)
    await email_flows.reset_password(
        db, identity, RequestMeta.of(request), token=body.token, new_password=body.new_password
    )


@email_router.post(
    "/email/verify",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm an email address (a new account's, or an email change) with its link",
    responses=INVALID_LINK_RESPONSES,
)
async def verify_email(
    body: VerifyEmailRequest,
    request: Request,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> None:
    await limit_link_holder(request, db, (email_links.VERIFY, email_links.EMAIL_CHANGE), body.token)
    await email_flows.verify_email(db, identity, RequestMeta.of(request), body.token)
