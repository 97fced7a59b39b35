"""Render an unexpected exception as the 500 problem *inside* the protection stack.

RequestContextMiddleware, outermost, is the last line of defence: it logs and reports
the exception and answers 500 if nothing has been sent. Answering here first, then
re-raising, sends that same 500 through the headers, CORS and rate-limit middleware on
its way out, while logging and reporting still happen exactly once, outside.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.http.problems import internal_error_body, problem_response


async def call_answering_errors(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app`; if it raises before its response started, send the 500 problem, then re-raise."""
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except Exception:
        if not started:
            await problem_response(internal_error_body(scope))(scope, receive, tracking_send)
        raise


class InternalErrorResponseMiddleware:
    """Innermost protection middleware: see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await call_answering_errors(self.app, scope, receive, send)
