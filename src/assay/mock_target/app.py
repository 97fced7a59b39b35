"""The mock target's ASGI application: the mock models' routes, and the mock-only request
log under `/_mock`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.mock_target import chat, rest
from assay.mock_target.state import TargetState

# Every answer says it is fake, so that a mock answer is never mistaken for a real one.
MOCK_HEADER = (b"x-assay-mock", b"fake AI target for red-team demos and tests")


class _MarkedAsMock:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), MOCK_HEADER]
            await send(message)

        await self.app(scope, receive, marked if scope["type"] == "http" else send)


def create_app(*, latency_seconds: float = 0.0) -> Starlette:
    """The mock target; every model answer comes after LATENCY_SECONDS."""
    if latency_seconds < 0:
        raise ValueError("latency_seconds cannot be negative")
    state = TargetState(latency_seconds=latency_seconds)

    async def recorded_requests(request: Request) -> Response:
        return JSONResponse({"mock_only": True, "requests": state.log.entries()})

    async def clear_requests(request: Request) -> Response:
        state.log.clear()
        return JSONResponse({"mock_only": True, "requests": []})

    app = Starlette(
        routes=[
            *chat.routes(state),
            *rest.routes(state),
            Route("/_mock/requests", recorded_requests, methods=["GET"]),
            Route("/_mock/requests", clear_requests, methods=["DELETE"]),
        ]
    )
    app.add_middleware(_MarkedAsMock)
    app.state.mock_target = state
    return app
