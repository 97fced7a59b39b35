"""HEAD on every GET route (RFC 9110 section 9.3.2): the GET route answers, without body.

FastAPI registers API routes for exactly the methods they declare, so HEAD would be a
405 everywhere but on static files. Here a HEAD request is routed as a GET, and the
response keeps its status and headers (Content-Length included) but drops its body.
That is safe because no GET route changes anything (tests/security/test_csrf.py walks
them all). The route sees the method as GET, so a signed HEAD request must sign
``"@method": GET``. Other requests pay one comparison.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy: the server's own scope must keep HEAD (uvicorn then sends no body).
        # It shares the state dictionary, so principal and budget still reach the
        # outer middleware.
        as_get = {**scope, "method": "GET"}

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(as_get, receive, send_without_body)
        finally:
            # Logs and metrics name the route the request matched.
            if "route" in as_get:
                scope["route"] = as_get["route"]
