"""Security headers on every response: errors, 404s, docs and static files included.

Header lists are built once; per response the middleware makes one pass over the
response headers (to drop `Server`, complete `Content-Type`, pick the CSP) and per
request one pass over the request headers (credentials, forwarded scheme).

Responses are `Cache-Control: no-store` unless the route chose its own caching for an
anonymous request (the API docs' static files) or for a public asset (the console's
content-hashed files): tokens, CSRF tokens and personal data must never sit in a
browser or proxy cache (RFC 6749 section 5.1, ASVS 14.3).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.core.net import IPNetwork
from assay.http.server_errors import call_answering_errors

# JSON and everything that is not a page: nothing may load, nothing may frame it.
API_CSP = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "object-src 'none'"
)
# The console: its own scripts, styles and API only; no inline script, no plugins.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), "
    "gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), serial=(), "
    "usb=(), xr-spatial-tracking=()"
)
# Sent on every response, whatever its type; also by the server itself on the answers it
# writes before the application runs (assay.http.server_protocol).
STATIC_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("permissions-policy", PERMISSIONS_POLICY),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("x-permitted-cross-domain-policies", "none"),
)
# Set in the request's state by a route answering a file that is the same for everyone
# and holds nothing personal (the console's content-hashed assets): its own public
# caching is kept even when the request carried credentials.
PUBLIC_ASSET_STATE_KEY = "public_asset"
SESSION_COOKIES = frozenset({b"assay_session", b"__Host-assay_session"})
CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key"})
_DROPPED_RESPONSE_HEADERS = frozenset({b"server", b"x-powered-by"})


def _encode(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def hsts_value(max_age_seconds: int, preload: bool) -> str:
    return f"max-age={max_age_seconds}; includeSubDomains" + ("; preload" if preload else "")


def with_charset(content_type: bytes) -> bytes:
    """Text types get an explicit charset; JSON gets none (RFC 8259 defines none, see
    docs/decisions/0002-content-type-charset.md)."""
    lowered = content_type.lower()
    if b"charset=" in lowered:
        return content_type
    media_type = lowered.split(b";", 1)[0].strip()
    if media_type.startswith(b"text/") or media_type.endswith((b"+xml", b"/xml")):
        return content_type + b"; charset=utf-8"
    return content_type


def _has_session_cookie(cookie_header: bytes) -> bool:
    return any(
        part.split(b"=", 1)[0].strip() in SESSION_COOKIES for part in cookie_header.split(b";")
    )


def _peer_is_trusted(scope: Scope, trusted: Sequence[IPNetwork]) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        peer = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(peer in network for network in trusted)


class SecurityHeadersMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Sequence[IPNetwork],
        hsts_max_age_seconds: int,
        hsts_preload: bool,
    ) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)
        self.common_headers = _encode(STATIC_HEADERS)
        self.api_csp = _encode([("content-security-policy", API_CSP)])
        self.console_csp = _encode([("content-security-policy", CONSOLE_CSP)])
        self.hsts = _encode(
            [("strict-transport-security", hsts_value(hsts_max_age_seconds, hsts_preload))]
        )
        self.no_store = _encode([("cache-control", "no-store")])

    def _inspect_request(self, scope: Scope) -> tuple[bool, bool]:
        """(arrived over https, carries credentials)."""
        https = scope.get("scheme") == "https"
        credentials = False
        forwarded_proto: bytes | None = None
        for name, value in scope["headers"]:
            if name in CREDENTIAL_HEADERS or (name == b"cookie" and _has_session_cookie(value)):
                credentials = True
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
        if (
            not https
            and forwarded_proto is not None
            and self.trusted_proxies
            and _peer_is_trusted(scope, self.trusted_proxies)
        ):
            # The last value is the one our own (trusted) proxy wrote.
            https = forwarded_proto.rsplit(b",", 1)[-1].strip().lower() == b"https"
        return https, credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https, credentials = self._inspect_request(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {})
                authenticated = (credentials or bool(state.get("principal_id"))) and not state.get(
                    PUBLIC_ASSET_STATE_KEY
                )
                message["headers"] = self._response_headers(
                    message.get("headers") or (), https=https, authenticated=authenticated
                )
            await send(message)

        # Also answers exceptions raised by the protection middleware itself.
        await call_answering_errors(self.app, scope, receive, send_with_headers)

    def _response_headers(
        self, raw: Sequence[tuple[bytes, bytes]], *, https: bool, authenticated: bool
    ) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        html = False
        has_csp = False
        has_cache_control = False
        for name, value in raw:
            if name in _DROPPED_RESPONSE_HEADERS:
                continue  # never advertise the server software or its version
            if name == b"content-type":
                html = value[:9].lower() == b"text/html"
                headers.append((name, with_charset(value)))
                continue
            if name == b"content-security-policy":
                has_csp = True  # a route that needs its own policy (the API docs) set it
            elif name == b"cache-control":
                if authenticated:
                    continue  # replaced by no-store below
                has_cache_control = True  # an anonymous static file's own caching
            headers.append((name, value))
        headers.extend(self.common_headers)
        if not has_csp:
            headers.extend(self.console_csp if html else self.api_csp)
        if not has_cache_control:
            headers.extend(self.no_store)
        if https:
            headers.extend(self.hsts)
        return headers
