"""Refuse JSON bodies nested too deeply or with too long an array, before parsing.

`json.loads` and everything after it (validation, serialisation) recurse per nesting
level and allocate per element, so the structure is measured first, without recursion
and in C-speed passes over the raw bytes:

1. strings are removed (their content may hold brackets and commas);
2. every byte but ``[]{},`` is deleted, leaving the skeleton of the document;
3. each pass removes the innermost groups (a bracket pair with no bracket inside); the
   number of passes is the nesting depth, and an array is checked for length at the
   pass where it is innermost (its commas are then contiguous).

At most ``max_depth`` passes run. A body too small to exceed either limit (fewer
brackets than the depth limit and fewer commas than the length limit, counting those
inside strings) skips all of it. Malformed JSON is left for the parser to refuse.

Text no database stores is refused here too (422), where the raw bytes still show how
it was spelt: the escape ``\\u0000`` (PostgreSQL's text and jsonb hold no U+0000) and a
UTF-16 surrogate escape without its partner (not a character: it has no UTF-8 form, so
neither a record holding it nor an answer quoting it could be written). The parser
refuses both characters sent raw (a raw control character, invalid UTF-8), so only
their escapes need finding: one anchored regex pass, and none at all for a body with no
backslash in it, which is most of them (measured on a 2.4 KB predict body: looking for
a backslash, a memchr, costs under 0.1 us; the regex pass about 0.8-1.2 us; looking for
the two bytes ``\\u`` instead would cost about 2 us, more than the pass itself).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.core.errors import AssayError, PayloadTooLarge, ValidationFailed
from assay.http.body_limit import BodyTooLarge
from assay.http.problems import problem_body, problem_response, request_id_of

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_SKELETON = bytes(b for b in range(256) if b not in b"[]{},")
_INNERMOST_GROUP = re.compile(rb"[\[{][^\[\]{}]*[\]}]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_HIGH = rb"[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"[dD][c-fC-F][0-9a-fA-F]{2}"
# Matches from the start of the body up to the first refused escape, taking the body
# escape by escape so that the backslash of an escaped backslash (\\) never starts one.
# Each step is one of: a run without backslashes; an escape other than \u; \u not
# starting NUL or a surrogate (its digits then go with the next run); a surrogate pair.
# The steps cannot overlap, so the possessive loop never backtracks: linear time.
_REFUSED_ESCAPE = re.compile(
    rb"(?:[^\\]++|\\[^u]|\\u(?!0000|[dD][89a-fA-F])|\\u" + _HIGH + rb"\\u" + _LOW + rb")*+"
    rb"\\u(0000|" + _HIGH + rb"|" + _LOW + rb")"
)

TOO_DEEP = "json_too_deep"
TOO_LONG = "json_array_too_long"
NUL_CHARACTER = "json_nul_character"
UNPAIRED_SURROGATE = "json_unpaired_surrogate"


def refused_escape(body: bytes) -> str | None:
    """NUL_CHARACTER or UNPAIRED_SURROGATE for the first such escape in a JSON text,
    else None. Malformed escapes are left for the parser to refuse."""
    found = _REFUSED_ESCAPE.match(body)
    if found is None:
        return None
    return NUL_CHARACTER if found.group(1) == b"0000" else UNPAIRED_SURROGATE


def is_json_media_type(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def replaying_receive(body: bytes, receive: Receive) -> Receive:
    """A `receive` that first hands over `body` (already read, whole), then defers to
    `receive` (for the disconnect that may follow)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class JsonStructureLimits:
    """Measures a raw JSON body against a depth and an array-length limit."""

    def __init__(self, max_depth: int, max_array_length: int) -> None:
        self.max_depth = max_depth
        self.max_array_length = max_array_length
        # max_array_length commas inside one innermost array = one element too many.
        self._long_array = re.compile(rb"\[,{%d}" % max_array_length)

    def violation(self, body: bytes) -> str | None:
        """TOO_DEEP, TOO_LONG, or None when the body is within both limits."""
        openers = body.count(b"[") + body.count(b"{")
        if openers <= self.max_depth and body.count(b",") < self.max_array_length:
            return None
        skeleton = _STRING.sub(b"", body).translate(None, _NOT_SKELETON)
        depth = 0
        while True:
            if self._long_array.search(skeleton):
                return TOO_LONG
            collapsed = _INNERMOST_GROUP.sub(b"", skeleton)
            if len(collapsed) == len(skeleton):
                # Nothing left to collapse: either no brackets, or unbalanced ones the
                # parser will refuse; unclosed openers still bound how deep it could go.
                unclosed = skeleton.count(b"[") + skeleton.count(b"{")
                return TOO_DEEP if depth + unclosed > self.max_depth else None
            depth += 1
            if depth > self.max_depth:
                return TOO_DEEP
            skeleton = collapsed


def refusal(violation: str, limits: JsonStructureLimits) -> AssayError:
    """The problem a body is refused with, for a code from `violation` or `refused_escape`."""
    if violation == TOO_DEEP:
        detail = f"The JSON body is nested deeper than {limits.max_depth} levels."
    elif violation == TOO_LONG:
        detail = f"A JSON array in the body has more than {limits.max_array_length} elements."
    elif violation == NUL_CHARACTER:
        detail = "The JSON body contains the escape \\u0000 (U+0000, NUL), accepted in no text."
    else:
        detail = (
            "The JSON body contains a UTF-16 surrogate escape (\\ud800-\\udfff) without its "
            "partner, which is not a character."
        )
    errors = [{"field": "body", "code": violation, "message": detail}]
    if violation in (TOO_DEEP, TOO_LONG):
        return PayloadTooLarge(detail, errors=errors)
    return ValidationFailed(detail, errors=errors)


class JsonLimitsMiddleware:
    """Reads a JSON body (bounded by the body-size limit outside), checks its structure,
    then replays it to the application."""

    def __init__(self, app: ASGIApp, *, max_depth: int, max_array_length: int) -> None:
        self.app = app
        self.limits = JsonStructureLimits(max_depth, max_array_length)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
        if content_type is None or not is_json_media_type(content_type):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away; nobody is left to answer
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except BodyTooLarge as exc:
            await self._refuse(scope, receive, send, PayloadTooLarge(str(exc.detail)))
            return
        body = b"".join(chunks)
        violation = self.limits.violation(body)
        # No backslash, no escape. find rather than `in`: on bytes, `in` first tries its
        # operand as an integer, which doubles the cost.
        if violation is None and body.find(b"\\") >= 0:
            violation = refused_escape(body)
        if violation is not None:
            await self._refuse(scope, receive, send, refusal(violation, self.limits))
            return
        await self.app(scope, replaying_receive(body, receive), send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: AssayError) -> None:
        body = problem_body(
            status=error.status,
            slug=error.slug,
            title=error.title,
            detail=error.detail,
            instance=str(scope.get("path", "")),
            request_id=request_id_of(scope),
            extra={"errors": error.errors} if error.errors else None,
        )
        await problem_response(body)(scope, receive, send)
