"""Cross-origin requests from an exact allow-list of origins.

Listed origins get their own origin echoed back with credentials allowed. `*` (refused
in production) lets any origin read responses, without credentials. Any other origin
gets no CORS header at all, and its preflights a 403 problem. Starlette's middleware is
not used because it sends Allow-Credentials and Expose-Headers to every origin.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.core.errors import Forbidden
from assay.http.problems import problem_body, problem_response, request_id_of

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_REQUEST_HEADERS = (
    "accept",
    "accept-language",
    "authorization",
    "content-language",
    "content-digest",
    "content-type",
    "idempotency-key",
    "signature",
    "signature-input",
    "x-api-key",
    "x-csrf-token",
    "x-request-id",
)
EXPOSED_HEADERS = (
    "location",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
    "x-request-id",
)
_VARY_ORIGIN = (b"vary", b"Origin")


def normalise_origin(origin: str) -> str:
    """Origins compare as browsers serialise them: lower case, no trailing slash."""
    return origin.strip().rstrip("/").lower()


class CORSMiddleware:
    def __init__(self, app: ASGIApp, *, origins: Sequence[str], max_age_seconds: int) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(normalise_origin(o) for o in origins if o.strip() != "*")
        self.enabled = self.any_origin or bool(self.origins)
        self.allowed_methods = frozenset(ALLOWED_METHODS)
        self.allowed_request_headers = frozenset(ALLOWED_REQUEST_HEADERS)
        exposed = (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode())
        self.listed_headers = [(b"access-control-allow-credentials", b"true"), exposed]
        self.any_origin_headers = [(b"access-control-allow-origin", b"*"), exposed]
        self.preflight_headers = [
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-allow-headers", ", ".join(ALLOWED_REQUEST_HEADERS).encode()),
            (b"access-control-max-age", str(max_age_seconds).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        requested_method: bytes | None = None
        requested_headers: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                requested_method = value
            elif name == b"access-control-request-headers":
                requested_headers = value
        cors_headers = self._headers_for(origin)
        if scope["method"] == "OPTIONS" and origin is not None and requested_method is not None:
            await self._preflight(
                scope, receive, send, cors_headers, requested_method, requested_headers
            )
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Answers differ by Origin once any origin is allowed: caches must know.
                message["headers"] = [*message.get("headers", ()), _VARY_ORIGIN, *cors_headers]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _headers_for(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        if origin is None:
            return []
        text = origin.decode("latin-1")
        if normalise_origin(text) in self.origins:
            return [(b"access-control-allow-origin", origin), *self.listed_headers]
        if self.any_origin:
            return self.any_origin_headers
        return []

    async def _preflight(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        cors_headers: list[tuple[bytes, bytes]],
        requested_method: bytes,
        requested_headers: bytes | None,
    ) -> None:
        method_allowed = requested_method.decode("latin-1").strip() in self.allowed_methods
        headers_allowed = requested_headers is None or all(
            name.strip().lower() in self.allowed_request_headers
            for name in requested_headers.decode("latin-1").split(",")
            if name.strip()
        )
        if cors_headers and method_allowed and headers_allowed:
            headers = [_VARY_ORIGIN, *cors_headers, *self.preflight_headers]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        refused = "origin" if not cors_headers else "method" if not method_allowed else "headers"
        body = problem_body(
            status=Forbidden.status,
            slug="cors-refused",
            title="Cross-origin request refused",
            detail=f"This cross-origin request is not allowed (its {refused}).",
            instance=str(scope.get("path", "")),
            request_id=request_id_of(scope),
        )
        await problem_response(body, {"Vary": "Origin"})(scope, receive, send)
