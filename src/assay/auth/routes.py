"""Authentication and the signed-in user's own account."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from assay.accounts import service as email_flows
from assay.accounts.models import User
from assay.accounts.schemas import (
    Accepted,
    EmailChangeRequest,
    MeResponse,
    MeUpdate,
    PasswordChangeRequest,
)
from assay.audit.service import RequestMeta, record_event
from assay.auth import mfa, service
from assay.auth.context import IdentityContext
from assay.auth.csrf import csrf_token
from assay.auth.deps import AnyScope, Authenticated, cookie_name, identity_of
from assay.auth.models import AuthSession
from assay.auth.schemas import (
    BackupCodes,
    ConsoleSessionResponse,
    LoginRequest,
    MfaChallengeResponse,
    MfaRequest,
    ReauthRequest,
    RefreshRequest,
    SessionView,
    SwitchOrgRequest,
    TokenResponse,
    TotpConfirm,
    TotpEnrolment,
)
from assay.auth.tokens import MFA_CHALLENGE, InvalidToken, new_opaque_token
from assay.core.db import DbSession
from assay.core.errors import Forbidden, ValidationFailed
from assay.core.principal import MFA_ENROLMENT_SCOPE, PASSWORD_CHANGE_SCOPE, Principal
from assay.http.rate_limit import RateLimitAuth, limit_auth_account

auth_router = APIRouter(prefix="/v1/auth", tags=["auth"])
me_router = APIRouter(prefix="/v1/me", tags=["me"])

Identity = Annotated[IdentityContext, Depends(identity_of)]


def _tokens(pair: service.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        org_id=pair.org_id,
        scope=pair.scope,
    )


@auth_router.post(
    "/login",
    summary="Sign in with email and password",
    responses={
        401: {"description": "Invalid credentials (also for locked accounts)"},
        403: {"description": "Right password, but the email address is not verified yet"},
    },
)
async def login(
    body: LoginRequest, request: Request, db: DbSession, identity: Identity, _limit: RateLimitAuth
) -> TokenResponse | MfaChallengeResponse:
    await limit_auth_account(request, body.email)
    result = await service.login(
        db,
        identity,
        RequestMeta.of(request),
        email=body.email,
        password=body.password,
        org_slug=body.org,
    )
    if isinstance(result, service.MfaChallenge):
        return MfaChallengeResponse(challenge=result.challenge, expires_in=result.expires_in)
    return _tokens(result)


@auth_router.post("/mfa", summary="Complete sign-in with a TOTP or backup code")
async def complete_mfa(
    body: MfaRequest,
    request: Request,
    response: Response,
    db: DbSession,
    identity: Identity,
    _limit: RateLimitAuth,
) -> TokenResponse | ConsoleSessionResponse:
    try:
        subject = identity.signer.decode(body.challenge, MFA_CHALLENGE)["sub"]
    except InvalidToken:
        subject = None  # refused below; a forged challenge names no account to charge
    if subject is not None:
        # Per account (the second factor's own budget), whatever address it comes from.
        await limit_auth_account(request, f"mfa:{subject}")
    cookie = new_opaque_token() if body.session == "console" else None
    pair = await service.complete_mfa(
        db,
        identity,
        RequestMeta.of(request),
        challenge=body.challenge,
        code=body.code,
        cookie=cookie,
    )
    if cookie is not None:
        _set_session_cookie(response, identity, cookie)
        return _console(identity, pair)
    return _tokens(pair)


@auth_router.post("/refresh", summary="Exchange a refresh token for new tokens (rotates it)")
async def refresh(
    body: RefreshRequest, request: Request, db: DbSession, identity: Identity, _limit: RateLimitAuth
) -> TokenResponse:
    return _tokens(await service.refresh(db, identity, RequestMeta.of(request), body.refresh_token))


def _set_session_cookie(response: Response, identity: IdentityContext, cookie: str) -> None:
    response.set_cookie(
        cookie_name(identity.settings.public_url),
        cookie,
        max_age=identity.settings.refresh_token_ttl_days * 86400,
        path="/",
        secure=identity.settings.public_url.startswith("https://"),
        httponly=True,
        samesite="strict",
    )


def _console(identity: IdentityContext, pair: service.TokenPair) -> ConsoleSessionResponse:
    return ConsoleSessionResponse(
        csrf_token=csrf_token(identity.csrf_key, pair.session_id),
        org_id=pair.org_id,
        scope=pair.scope,
    )


@auth_router.post(
    "/session",
    summary="Console sign-in: sets an HttpOnly session cookie",
    responses={
        401: {"description": "Invalid credentials (also for locked accounts)"},
        403: {"description": "Right password, but the email address is not verified yet"},
    },
)
async def console_login(
    body: LoginRequest,
    request: Request,
    response: Response,
    db: DbSession,
    identity: Identity,
    _limit: RateLimitAuth,
) -> ConsoleSessionResponse | MfaChallengeResponse:
    await limit_auth_account(request, body.email)
    # A new random session id at every sign-in: no fixation.
    cookie = new_opaque_token()
    result = await service.login(
        db,
        identity,
        RequestMeta.of(request),
        email=body.email,
        password=body.password,
        org_slug=body.org,
        cookie=cookie,
    )
    if isinstance(result, service.MfaChallenge):
        return MfaChallengeResponse(challenge=result.challenge, expires_in=result.expires_in)
    _set_session_cookie(response, identity, cookie)
    return _console(identity, result)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session")
async def logout(
    request: Request, response: Response, principal: AnyScope, db: DbSession, identity: Identity
) -> None:
    await service.logout(db, identity, RequestMeta.of(request), principal)
    if principal.auth_method == "cookie":
        response.delete_cookie(cookie_name(identity.settings.public_url), path="/")


@auth_router.post(
    "/switch-org",
    summary="End this session and start one in another organisation you belong to",
    description="A console (cookie) session gets a new cookie and CSRF token; a token "
    "session gets new tokens.",
)
async def switch_org(
    body: SwitchOrgRequest,
    request: Request,
    response: Response,
    principal: Authenticated,
    db: DbSession,
    identity: Identity,
) -> TokenResponse | ConsoleSessionResponse:
    cookie = new_opaque_token() if principal.auth_method == "cookie" else None
    pair = await service.switch_org(
        db, identity, RequestMeta.of(request), principal, body.org, cookie=cookie
    )
    if cookie is not None:
        _set_session_cookie(response, identity, cookie)
        return _console(identity, pair)
    return _tokens(pair)


# --- the signed-in user -----------------------------------------------------------------


async def _me(db: DbSession, principal: Principal) -> User:
    if principal.kind != "user":
        raise Forbidden("This route is for signed-in users, not API keys.")
    return await db.get_one(User, principal.id)


@me_router.get("", summary="Who am I")
async def read_me(principal: AnyScope, db: DbSession) -> MeResponse:
    user = await _me(db, principal)
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
    user = await _me(db, principal)
    user.display_name = body.display_name
    return await read_me(principal, db)


@me_router.post(
    "/password",
    summary="Change my password (ends my other sessions)",
    description="Needs the current password, counted like a sign-in. After a forced "
    "change the restricted session is replaced: new tokens, or for a console session a "
    "new cookie and CSRF token.",
    responses={422: {"description": "Wrong current password, or the new one breaks a rule"}},
)
async def change_password(
    body: PasswordChangeRequest,
    request: Request,
    response: Response,
    principal: AnyScope,
    _limit: RateLimitAuth,
    db: DbSession,
    identity: Identity,
) -> TokenResponse | ConsoleSessionResponse | None:
    if principal.scope not in (PASSWORD_CHANGE_SCOPE, "full"):
        raise Forbidden("Finish MFA enrolment first.")
    user = await _me(db, principal)
    await limit_auth_account(request, user.email)
    forced_console = principal.scope == PASSWORD_CHANGE_SCOPE and principal.auth_method == "cookie"
    cookie = new_opaque_token() if forced_console else None
    pair = await service.change_password(
        db,
        identity,
        RequestMeta.of(request),
        principal,
        current_password=body.current_password,
        new_password=body.new_password,
        cookie=cookie,
    )
    if pair is None:
        return None
    if cookie is not None:
        _set_session_cookie(response, identity, cookie)
        return _console(identity, pair)
    return _tokens(pair)


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
    user = await _me(db, principal)
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
    await _me(db, principal)
    return [
        SessionView.model_validate(s, from_attributes=True).model_copy(
            update={"current": s.id == principal.session_id}
        )
        for s in await service.user_sessions(db, principal.id)
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
    await _me(db, principal)
    await service.end_own_session(db, identity, RequestMeta.of(request), principal, session_id)


def _enrolment_allowed(principal: Principal) -> None:
    if principal.scope not in (MFA_ENROLMENT_SCOPE, "full"):
        raise Forbidden("Change your password first.")


@me_router.post("/mfa/totp", summary="Start TOTP enrolment: secret, otpauth URI and QR code")
async def begin_totp(principal: AnyScope, db: DbSession, identity: Identity) -> TotpEnrolment:
    _enrolment_allowed(principal)
    await _me(db, principal)
    enrolment = await mfa.begin_enrolment(db, identity, principal)
    return TotpEnrolment(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@me_router.post("/mfa/totp/confirm", summary="Confirm TOTP with a first code; get backup codes")
async def confirm_totp(
    body: TotpConfirm, request: Request, principal: AnyScope, db: DbSession, identity: Identity
) -> BackupCodes:
    _enrolment_allowed(principal)
    await _me(db, principal)
    codes = await mfa.confirm_enrolment(db, identity, RequestMeta.of(request), principal, body.code)
    if principal.scope == MFA_ENROLMENT_SCOPE and principal.session_id is not None:
        # The restricted session has done its job; the client signs in again with MFA.
        session = await db.get_one(AuthSession, principal.session_id)
        await service.end_sessions(db, identity, [session], "mfa_enrolled")
    return BackupCodes(backup_codes=codes)


async def _reauthenticate(
    db: DbSession, identity: IdentityContext, request: Request, principal: Principal, password: str
) -> User:
    """The signed-in user, once their password is confirmed (counted, throttled, locked)."""
    user = await _me(db, principal)
    await limit_auth_account(request, user.email)
    await service.confirm_password(db, identity, RequestMeta.of(request), principal, user, password)
    return user


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
    user = await _me(db, principal)
    required = await service.mfa_requirement(db, user)
    if required is not None:
        raise service.MfaRequired(required)
    await _reauthenticate(db, identity, request, principal, body.password)
    await mfa.disable(db, identity, RequestMeta.of(request), principal, user)


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
    user = await _reauthenticate(db, identity, request, principal, body.password)
    if not user.mfa_enabled:
        raise ValidationFailed("Enable MFA first.")
    codes = await mfa.regenerate_backup_codes(db, identity, user)
    record_event(
        db, RequestMeta.of(request), action="mfa.backup_codes_regenerated", actor=principal
    )
    return BackupCodes(backup_codes=codes)
