"""SHA-256 of a signed request's body, taken as the bytes pass through.

Request signing (identity/request_signing.py) compares the client's `Content-Digest`
with the body actually received. Routes taking a form consume the body before any
dependency runs and Starlette keeps no copy of it, so the digest is computed here, on
the way in, for requests that carry `Signature-Input`; others pay nothing.
"""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_DIGEST_STATE_KEY = "body_digest"


class BodyDigest:
    """A running SHA-256 of the request body; `complete` once the last chunk passed."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.complete = False

    def update(self, chunk: bytes, *, more: bool) -> None:
        if self.complete:
            return
        self._hash.update(chunk)
        self.complete = not more

    def digest(self) -> bytes:
        return self._hash.digest()


class BodyDigestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not any(
            name == b"signature-input" for name, _ in scope["headers"]
        ):
            await self.app(scope, receive, send)
            return
        body_digest = BodyDigest()
        scope.setdefault("state", {})[BODY_DIGEST_STATE_KEY] = body_digest

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body_digest.update(
                    message.get("body", b""), more=bool(message.get("more_body", False))
                )
            return message

        await self.app(scope, hashing_receive, send)
