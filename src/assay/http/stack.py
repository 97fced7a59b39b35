"""The HTTP protection layer in one call: `install_http_protection(app, settings)`.

Outermost first, inside RequestContextMiddleware (request id, client address, logs):

    SecurityHeaders  every response gets its headers, errors and 404s included
    TrustedHost      unknown Host -> 400 (production, or when allowed_hosts is set)
    CORS             allow-list; preflights answered here
    RateLimit        budget headers; default limit for what no dependency charged
    BodySizeLimit    413 while streaming; larger limit on upload routes
    JsonLimits       413 for JSON nested too deep or with too long an array
    InternalError    an unexpected exception becomes the 500 problem on its way out
    BodyDigest       SHA-256 of signed requests' bodies, for request signing
    Head             HEAD answered by the GET route, without body

Each one's own answers (400, 403, 413, 422, 429) pass through every layer above it.
It also adds the default rate limit (a router-wide dependency) and the API docs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from assay.core.net import parse_networks
from assay.http.body_digest import BodyDigestMiddleware
from assay.http.body_limit import BodySizeLimitMiddleware
from assay.http.cors import CORSMiddleware
from assay.http.docs import install_docs
from assay.http.head import HeadMiddleware
from assay.http.json_limits import JsonLimitsMiddleware
from assay.http.openapi_problems import document_problem_responses
from assay.http.rate_limit import QuotaOverrides, RateLimiter
from assay.http.rate_limit_middleware import RateLimitMiddleware
from assay.http.route_charge import enforce_default_rate_limit
from assay.http.security_headers import SecurityHeadersMiddleware
from assay.http.server_errors import InternalErrorResponseMiddleware
from assay.http.trusted_hosts import TrustedHostMiddleware, host_of_url
from assay.settings import Settings


def enforced_allowed_hosts(settings: Settings) -> list[str] | None:
    """The Host allow-list, or None when it is not enforced (outside production, unset)."""
    if not settings.is_production and not settings.allowed_hosts:
        return None
    hosts = list(settings.allowed_hosts)
    public_host = host_of_url(settings.public_url)
    if public_host:
        hosts.append(public_host)
    return hosts


def install_http_protection(
    app: FastAPI, settings: Settings, quotas: QuotaOverrides | None = None
) -> None:
    """Add security headers, trusted hosts, CORS, rate limits and request limits to `app`.

    Call it before any router is included: the default rate limit is a router-wide
    dependency, which FastAPI attaches to routes as they are included. `quotas` is
    where per-organisation scoring quotas come from (the app passes the database-backed
    one); without it, only `rate_limit_org_overrides` applies.
    """
    if any(isinstance(c.original_route, APIRoute) for c in iter_route_contexts(app.router.routes)):
        msg = "install_http_protection(app, settings) must run before routers are included"
        raise RuntimeError(msg)
    limiter = RateLimiter(settings, quotas)
    app.state.rate_limiter = limiter
    app.router.dependencies.append(Depends(enforce_default_rate_limit))
    _close_on_shutdown(app, limiter.close)
    install_docs(app)
    document_problem_responses(app)

    # Each add_middleware call wraps the ones before it: innermost first.
    app.add_middleware(HeadMiddleware)
    app.add_middleware(BodyDigestMiddleware)
    app.add_middleware(InternalErrorResponseMiddleware)
    app.add_middleware(
        JsonLimitsMiddleware,
        max_depth=settings.max_json_depth,
        max_array_length=settings.max_json_array_length,
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(
        CORSMiddleware,
        origins=settings.cors_origins,
        max_age_seconds=settings.cors_max_age_seconds,
    )
    allowed_hosts = enforced_allowed_hosts(settings)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(
        SecurityHeadersMiddleware,
        trusted_proxies=parse_networks(settings.trusted_proxies),
        hsts_max_age_seconds=settings.hsts_max_age_seconds,
        hsts_preload=settings.hsts_preload,
    )


LifespanContext = Callable[[Any], AbstractAsyncContextManager[Any]]


def _close_on_shutdown(app: FastAPI, close: Callable[[], Any]) -> None:
    original: LifespanContext = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        try:
            async with original(application) as state:
                yield state
        finally:
            await close()

    app.router.lifespan_context = lifespan
