"""What other features' routes depend on: the principal (with its permission) on every
route, the identity context built once per application, and the answer that hands a
new session to the client (tokens, or a console cookie with its CSRF token)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response

from assay.auth.authenticator import NotAuthenticated

# Re-exported: other features type their parameters with it, and reach auth through deps.
from assay.auth.context import IdentityContext as IdentityContext  # noqa: PLC0414
from assay.auth.csrf import CSRF_HEADER, check_csrf, csrf_token
from assay.auth.request_signing import verify_signed_request
from assay.auth.schemas import ConsoleSessionResponse, TokenResponse, tokens_of
from assay.auth.sessions import TokenPair
from assay.core.errors import Forbidden
from assay.core.permissions import Permission
from assay.core.principal import (
    FULL_SCOPE,
    METRICS_SCOPE,
    METRICS_SCRAPER,
    OrgPrincipal,
    Principal,
)
from assay.http.route_charge import (
    default_limit_due,
    enforce_default_for_principal,
    establishes_principal,
)

SESSION_COOKIE = "assay_session"


SECURE_SESSION_COOKIE = "__Host-assay_session"


PERMISSION_ATTRIBUTE = "__assay_permission__"
# How routes that take a new password document its refusal.
PASSWORD_POLICY_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"description": "The password breaks a rule of the policy; `errors` names each rule"}
}


def cookie_name(public_url: str) -> str:
    return SECURE_SESSION_COOKIE if urlsplit(public_url).scheme == "https" else SESSION_COOKIE


@establishes_principal
async def authenticate(request: Request) -> Principal:
    """The caller, from an access token, an API key or a console session cookie.

    On routes that declare no rate-limit class, it also charges the default class, keyed
    by the principal it has just established (see `assay.http.rate_limit`).
    """
    identity = identity_of(request)
    authenticator = identity.authenticator
    state = request.scope.setdefault("state", {})
    authorization = request.headers.get("authorization")
    api_key = request.headers.get("x-api-key")
    principal: Principal
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise NotAuthenticated("Use 'Authorization: Bearer <token or API key>'.")
        if credential.startswith("assay_sk_"):
            principal = await authenticator.from_api_key(credential, state.get("client_address"))
        elif _is_metrics_token(identity, credential):
            principal = METRICS_SCRAPER
        else:
            principal = await authenticator.from_access_token(credential)
    elif api_key:
        principal = await authenticator.from_api_key(api_key, state.get("client_address"))
    else:
        cookie = request.cookies.get(cookie_name(identity.settings.public_url))
        if not cookie:
            raise NotAuthenticated("Credentials are required.")
        principal = await authenticator.from_session_cookie(cookie)
        assert principal.session_id is not None  # noqa: S101 - cookie sessions have ids
        check_csrf(
            identity.csrf_key,
            principal.session_id,
            request.method,
            request.headers.get(CSRF_HEADER),
            request.headers.get("origin"),
            request.headers.get("referer"),
            allowed_origins(identity),
            max_age_seconds=identity.settings.csrf_token_max_age_seconds,
        )
    if principal.extra.get("signing_required") == "1":
        # Only API keys require signatures, and every key belongs to an organisation.
        if not isinstance(principal, OrgPrincipal):
            raise NotAuthenticated("The API key is not valid.")
        await verify_signed_request(request, identity, principal)
    state["principal_id"] = str(principal.id)
    state["principal_kind"] = principal.kind
    state["org_id"] = str(principal.org_id) if principal.org_id else None
    if principal.key_id:
        state["api_key_id"] = principal.key_id
    if default_limit_due(request.scope):
        await enforce_default_for_principal(request)
    return principal


def _is_metrics_token(identity: IdentityContext, credential: str) -> bool:
    token = identity.settings.metrics_token
    # Compared in constant time; its principal's scope admits it to GET /metrics only.
    return token is not None and hmac.compare_digest(
        credential.encode(), token.get_secret_value().encode()
    )


def allowed_origins(identity: IdentityContext) -> frozenset[str]:
    parts = urlsplit(identity.settings.public_url)
    own = f"{parts.scheme}://{parts.netloc}".lower()
    return frozenset({own, *(o.lower().rstrip("/") for o in identity.settings.cors_origins)})


def _full_scope(principal: Principal) -> Principal:
    if principal.scope != FULL_SCOPE:
        raise Forbidden(
            "Finish the required step first "
            f"({principal.scope.replace('_', ' ')}) before using this route."
        )
    return principal


async def _signed_in(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    return _full_scope(principal)


def require(permission: Permission) -> Callable[..., Awaitable[OrgPrincipal]]:
    """A dependency admitting full-scope principals that hold `permission` inside an
    organisation; the route receives an `OrgPrincipal`."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> OrgPrincipal:
        _full_scope(principal)
        if not principal.can(permission) or not isinstance(principal, OrgPrincipal):
            raise Forbidden(f"This needs the '{permission}' permission.")
        return principal

    setattr(dependency, PERMISSION_ATTRIBUTE, permission)
    return dependency


async def _platform_admin(principal: Annotated[Principal, Depends(_signed_in)]) -> Principal:
    if not principal.is_platform_admin or principal.kind != "user":
        raise Forbidden("This needs a platform administrator.")
    return principal


async def _metrics_reader(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if principal.scope == METRICS_SCOPE:
        return principal
    if principal.scope == FULL_SCOPE and principal.is_platform_admin and principal.kind == "user":
        return principal
    raise Forbidden(
        "The metrics cover every organisation: they are for the platform's operators "
        "(a platform administrator, or the scrape token ASSAY_METRICS_TOKEN). An "
        "organisation's own usage is at GET /v1/system/usage."
    )


# Any principal, even one that must still enrol MFA or change its password.
AnyScope = Annotated[Principal, Depends(authenticate)]


Authenticated = Annotated[Principal, Depends(_signed_in)]


PlatformAdmin = Annotated[Principal, Depends(_platform_admin)]
# A platform administrator, or the operator's metrics scraper (ASSAY_METRICS_TOKEN).
MetricsReader = Annotated[Principal, Depends(_metrics_reader)]


def identity_of(request: Request) -> IdentityContext:
    context: IdentityContext = request.app.state.identity
    return context


# What identity built for this application: passwords, token signer, authenticator, mail.
Identity = Annotated[IdentityContext, Depends(identity_of)]


def set_session_cookie(response: Response, identity: IdentityContext, cookie: str) -> None:
    response.set_cookie(
        cookie_name(identity.settings.public_url),
        cookie,
        max_age=identity.settings.refresh_token_ttl_days * 86400,
        path="/",
        secure=identity.settings.public_url.startswith("https://"),
        httponly=True,
        samesite="strict",
    )


def console_session(
    response: Response, identity: IdentityContext, pair: TokenPair, cookie: str
) -> ConsoleSessionResponse:
    """Hand a new console session to the browser: the cookie, and its CSRF token."""
    set_session_cookie(response, identity, cookie)
    return ConsoleSessionResponse(
        csrf_token=csrf_token(identity.csrf_key, pair.session_id),
        org_id=pair.org_id,
        scope=pair.scope,
    )


def session_answer(
    response: Response, identity: IdentityContext, pair: TokenPair, cookie: str | None
) -> TokenResponse | ConsoleSessionResponse:
    """A new session's answer: a console cookie when `cookie` was issued, else tokens."""
    if cookie is not None:
        return console_session(response, identity, pair, cookie)
    return tokens_of(pair)
