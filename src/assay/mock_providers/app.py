"""The mock providers' ASGI application: the three providers under their prefixes, and the
mock-only request log under `/_mock`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.mock_providers import abuseipdb, urlhaus, virustotal
from assay.mock_providers.dataset import Dataset, load_dataset
from assay.mock_providers.state import MockState

# Every answer says it is fake, so that a mock answer is never mistaken for a real one.
MOCK_HEADER = (b"x-assay-mock", b"fake data for offline use")
PREFIXES = {
    "virustotal": virustotal.PREFIX,
    "abuseipdb": abuseipdb.PREFIX,
    "urlhaus": urlhaus.PREFIX,
}


class _MarkedAsMock:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), MOCK_HEADER]
            await send(message)

        await self.app(scope, receive, marked if scope["type"] == "http" else send)


def create_app(
    dataset: Dataset | None = None, *, latency_ms: float = 0, slow_seconds: float = 5.0
) -> Starlette:
    """The mock providers, answering from DATASET (default: the shipped one).

    LATENCY_MS is added to every provider answer; a `slow` indicator's answer comes
    after SLOW_SECONDS more.
    """
    if latency_ms < 0 or slow_seconds < 0:
        raise ValueError("latency_ms and slow_seconds cannot be negative")
    state = MockState(
        dataset=dataset or load_dataset(),
        latency_seconds=latency_ms / 1000,
        slow_seconds=slow_seconds,
    )

    async def recorded_requests(request: Request) -> Response:
        return JSONResponse({"mock_only": True, "requests": state.log.entries()})

    async def reset(request: Request) -> Response:
        state.log.clear()
        return JSONResponse({"mock_only": True, "requests": []})

    app = Starlette(
        routes=[
            Mount(virustotal.PREFIX, routes=virustotal.routes(state)),
            Mount(abuseipdb.PREFIX, routes=abuseipdb.routes(state)),
            Mount(urlhaus.PREFIX, routes=urlhaus.routes(state)),
            Route("/_mock/requests", recorded_requests, methods=["GET"]),
            Route("/_mock/reset", reset, methods=["POST"]),
        ]
    )
    app.add_middleware(_MarkedAsMock)
    app.state.mock = state
    return app
