"""Refuse oversized request bodies while they stream in, before they are buffered, and
overlong path segments before routing.

Ordinary routes accept `max_body_bytes`; routes that declare `AcceptsUpload` (model
artifacts, CSV files) accept the larger `max_upload_bytes`. A declared Content-Length
above the larger limit is refused at once. Which limit applies is decided on the first
read of the body, once routing has chosen the route; a body read before routing (the
JSON pre-check) always gets the ordinary limit.

Every path parameter is one path segment, so bounding segments bounds every path
parameter of every route, whatever its declaration (422 above
`MAX_PATH_SEGMENT_LENGTH`; the OpenAPI document says so). A path that short cannot hold
a long segment, so the usual request pays one length comparison.

For the same reason a NUL (``%00``) is refused here, in the path and in the query string,
for every route at once (422): PostgreSQL's text holds no U+0000, so a NUL in a model
name or a filter would otherwise fail the query. Percent-decoding cannot produce a
surrogate (invalid UTF-8 becomes U+FFFD), so a NUL is the one character to look for;
the two tests cost about 0.1 us a request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.core.errors import PayloadTooLarge, ValidationFailed
from assay.http.problems import problem_body, problem_response, request_id_of
from assay.http.route_markers import RouteMarkerCache

MAX_PATH_SEGMENT_LENGTH = 255


async def accept_upload() -> None:
    """Route marker, no work: its presence in a route's dependencies raises the body
    limit to `max_upload_bytes` (see `BodySizeLimitMiddleware`). Async so that FastAPI
    calls it without a thread-pool hop."""


AcceptsUpload = Annotated[None, Depends(accept_upload)]


class BodyTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so the framework's body parser re-raises it
    instead of reporting a generic parse error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds the limit of {limit} bytes.")


class BodySizeLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max(max_upload_bytes or max_body_bytes, max_body_bytes)
        self._accepts_upload = RouteMarkerCache(lambda _route, calls: accept_upload in calls, False)

    def limit_for(self, scope: Scope) -> int:
        """The limit for the route routing chose (the ordinary one before routing)."""
        if self._accepts_upload.value_for(scope):
            return self.max_upload_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > MAX_PATH_SEGMENT_LENGTH and any(
            len(segment) > MAX_PATH_SEGMENT_LENGTH for segment in path.split("/")
        ):
            await _refuse_long_segment(scope, receive, send)
            return
        if "\x00" in path:
            await _refuse_nul(scope, receive, send, "path")
            return
        # find, not `in`: on bytes, `in` first tries the operand as an integer (twice
        # the cost). A raw NUL never gets this far: both HTTP parsers refuse it.
        if scope["query_string"].find(b"%00") >= 0:
            await _refuse_nul(scope, receive, send, "query")
            return
        ceiling = self.max_upload_bytes
        declared = Headers(scope=scope).get("content-length")
        declared_size: int | None = None
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(scope, receive, send, 400, "Malformed Content-Length header.")
                return
            declared_size = int(declared)
            if declared_size > ceiling:
                detail = f"The request body exceeds the limit of {ceiling} bytes."
                await self._refuse(scope, receive, send, 413, detail)
                return
        received = 0
        limit: int | None = None

        async def limited_receive() -> Message:
            nonlocal received, limit
            if limit is None:
                limit = self.limit_for(scope)
                if declared_size is not None and declared_size > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        slug, title = (
            (PayloadTooLarge.slug, PayloadTooLarge.title)
            if status == 413
            else ("bad-request", "Bad request")
        )
        body = problem_body(
            status=status,
            slug=slug,
            title=title,
            detail=detail,
            instance=str(scope.get("path", "")),
            request_id=request_id_of(scope),
        )
        await problem_response(body)(scope, receive, send)


async def _refuse_long_segment(scope: Scope, receive: Receive, send: Send) -> None:
    message = f"A path segment may be at most {MAX_PATH_SEGMENT_LENGTH} characters long."
    await _refuse_invalid(scope, receive, send, "path", "string_too_long", message)


async def _refuse_nul(scope: Scope, receive: Receive, send: Send, where: str) -> None:
    message = f"The {where} may not contain %00 (U+0000, NUL)."
    await _refuse_invalid(scope, receive, send, where, "nul_character", message)


async def _refuse_invalid(
    scope: Scope, receive: Receive, send: Send, field: str, code: str, message: str
) -> None:
    body = problem_body(
        status=ValidationFailed.status,
        slug=ValidationFailed.slug,
        title=ValidationFailed.title,
        detail=f"Invalid input in {field}: {message}",
        # The path as received, with its NUL percent-encoded again: a problem body
        # should not carry one either (a client may store it).
        instance=str(scope.get("path", "")).replace("\x00", "%00"),
        request_id=request_id_of(scope),
        extra={"errors": [{"field": field, "code": code, "message": message}]},
    )
    await problem_response(body)(scope, receive, send)
