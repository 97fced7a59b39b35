"""Signing in and out under /v1/auth: password and MFA steps, token refresh, console
sessions, logout, switching organisation, and fresh CSRF tokens.

CSRF tokens expire (`csrf_token_max_age_seconds`, see `assay.auth.csrf`); a console
keeps working past that by fetching a new one from ``GET /v1/auth/csrf-token``,
typically when a write answers 403 with ``reason: token-expired``. A GET: it changes
nothing, so it needs no token itself, and a cross-origin page cannot read its answer
(no CORS headers for unlisted origins).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from assay.audit.service import RequestMeta
from assay.auth import signin
from assay.auth.csrf import csrf_token
from assay.auth.deps import (
    AnyScope,
    Authenticated,
    Identity,
    console_session,
    cookie_name,
    session_answer,
)
from assay.auth.schemas import (
    ConsoleSessionResponse,
    CsrfTokenResponse,
    LoginRequest,
    MfaChallengeResponse,
    MfaRequest,
    RefreshRequest,
    SwitchOrgRequest,
    TokenResponse,
    tokens_of,
)
from assay.auth.sessions import MfaChallenge
from assay.core.crypto import new_opaque_token
from assay.core.db import DbSession
from assay.core.errors import Forbidden
from assay.http.rate_limit import RateLimitAuth, limit_auth_account

auth_router = APIRouter(prefix="/v1/auth", tags=["auth"])


@auth_router.get(
    "/csrf-token",
    summary="A fresh CSRF token for this console session",
    responses={403: {"description": "The credentials have no session (an API key)"}},
)
async def fresh_csrf_token(principal: AnyScope, identity: Identity) -> CsrfTokenResponse:
    if principal.session_id is None:
        raise Forbidden("CSRF tokens belong to sessions; API keys need none.")
    return CsrfTokenResponse(
        csrf_token=csrf_token(identity.csrf_key, principal.session_id),
        expires_in=identity.settings.csrf_token_max_age_seconds,
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
    result = await signin.login(
        db,
        identity,
        RequestMeta.of(request),
        email=body.email,
        password=body.password,
        org_slug=body.org,
    )
    if isinstance(result, MfaChallenge):
        return MfaChallengeResponse(challenge=result.challenge, expires_in=result.expires_in)
    return tokens_of(result)


@auth_router.post("/mfa", summary="Complete sign-in with a TOTP or backup code")
async def complete_mfa(
    body: MfaRequest,
    request: Request,
    response: Response,
    db: DbSession,
    identity: Identity,
    _limit: RateLimitAuth,
) -> TokenResponse | ConsoleSessionResponse:
    subject = signin.challenge_subject(identity, body.challenge)
    if subject is not None:
        # Per account (the second factor's own budget), whatever address it comes from.
        await limit_auth_account(request, f"mfa:{subject}")
    cookie = new_opaque_token() if body.session == "console" else None
    pair = await signin.complete_mfa(
        db,
        identity,
        RequestMeta.of(request),
        challenge=body.challenge,
        code=body.code,
        cookie=cookie,
    )
    return session_answer(response, identity, pair, cookie)


@auth_router.post("/refresh", summary="Exchange a refresh token for new tokens (rotates it)")
async def refresh(
    body: RefreshRequest, request: Request, db: DbSession, identity: Identity, _limit: RateLimitAuth
) -> TokenResponse:
    return tokens_of(
        await signin.refresh(db, identity, RequestMeta.of(request), body.refresh_token)
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
    result = await signin.login(
        db,
        identity,
        RequestMeta.of(request),
        email=body.email,
        password=body.password,
        org_slug=body.org,
        cookie=cookie,
    )
    if isinstance(result, MfaChallenge):
        return MfaChallengeResponse(challenge=result.challenge, expires_in=result.expires_in)
    return console_session(response, identity, result, cookie)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session")
async def logout(
    request: Request, response: Response, principal: AnyScope, db: DbSession, identity: Identity
) -> None:
    await signin.logout(db, identity, RequestMeta.of(request), principal)
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
    pair = await signin.switch_org(
        db, identity, RequestMeta.of(request), principal, body.org, cookie=cookie
    )
    return session_answer(response, identity, pair, cookie)
