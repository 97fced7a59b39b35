"""Single sign-on with OpenID Connect: the browser leaves here and comes back here."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from assay.audit.service import RequestMeta
from assay.auth.deps import Identity, IdentityContext, session_answer
from assay.auth.schemas import ConsoleSessionResponse, MfaChallengeResponse, TokenResponse
from assay.auth.service import MfaChallenge
from assay.core.db import DbSession
from assay.http.rate_limit import RateLimitAuth
from assay.sso import service as sso
from assay.sso.deps import Oidc

router = APIRouter(prefix="/v1/auth/sso", tags=["auth"])

ProviderName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
CallbackValue = Annotated[str | None, Query(max_length=2048)]

BINDING_COOKIE = "assay_sso"
SECURE_BINDING_COOKIE = "__Host-assay_sso"


def _binding_cookie_name(identity: IdentityContext) -> str:
    return SECURE_BINDING_COOKIE if _secure(identity) else BINDING_COOKIE


def _secure(identity: IdentityContext) -> bool:
    return identity.settings.public_url.startswith("https://")


@router.get(
    "/{provider}/start",
    status_code=302,
    response_class=RedirectResponse,
    summary="Start single sign-on: redirects to the identity provider",
    responses={
        302: {"description": "To the provider's authorization endpoint"},
        404: {"description": "No such provider"},
        503: {"description": "The provider cannot be reached"},
    },
)
async def start_sso(
    provider: ProviderName,
    request: Request,
    db: DbSession,
    identity: Identity,
    oidc: Oidc,
    _limit: RateLimitAuth,
    session: Literal["token", "console"] = "token",
) -> Response:
    started = await sso.begin(
        db, identity, oidc, RequestMeta.of(request), provider, session_mode=session
    )
    response = RedirectResponse(started.location, status_code=302)
    response.headers["cache-control"] = "no-store"
    # Lax, not Strict: the way back is a top-level navigation from the provider's site,
    # on which a Strict cookie would not be sent.
    response.set_cookie(
        _binding_cookie_name(identity),
        started.binding,
        max_age=started.max_age,
        path="/",
        secure=_secure(identity),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/{provider}/callback",
    summary="Finish single sign-on: tokens, a console session, or an MFA challenge",
    responses={
        401: {"description": "Sign-in failed (the reason is in the server's log)"},
        404: {"description": "No such provider"},
    },
)
async def sso_callback(
    provider: ProviderName,
    request: Request,
    response: Response,
    db: DbSession,
    identity: Identity,
    oidc: Oidc,
    _limit: RateLimitAuth,
    code: CallbackValue = None,
    state: CallbackValue = None,
    error: CallbackValue = None,
) -> TokenResponse | ConsoleSessionResponse | MfaChallengeResponse:
    outcome = await sso.complete(
        db,
        identity,
        oidc,
        RequestMeta.of(request),
        provider,
        code=code,
        state=state,
        binding=request.cookies.get(_binding_cookie_name(identity)),
        provider_error=error,
    )
    response.headers["cache-control"] = "no-store"
    response.delete_cookie(
        _binding_cookie_name(identity),
        path="/",
        secure=_secure(identity),
        httponly=True,
        samesite="lax",
    )
    result = outcome.result
    if isinstance(result, MfaChallenge):
        return MfaChallengeResponse(challenge=result.challenge, expires_in=result.expires_in)
    return session_answer(response, identity, result, outcome.console_cookie)
