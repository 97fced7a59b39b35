"""A small round-robin HTTP proxy for scale-out tests, run as an ASGI app in the test.

It sends each request to the next backend in rotation, streams the answer back (so
Server-Sent Events pass through), and skips a backend that refuses the connection.
`drain()` takes a backend out of rotation before it is stopped, as a load balancer
does when a pod stops being ready, and `in_flight()` says how many requests it still
has there: a load balancer's connection draining waits for none before the pod is
signalled. `restore()` puts it back.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

# Hop-by-hop headers (RFC 9110, section 7.6.1) and the ones httpx sets itself.
_DROPPED = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@dataclass
class RoundRobinProxy:
    backends: list[str]
    drained: set[str] = field(default_factory=set)
    sent: dict[str, int] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        # Connections are not reused: a backend that stops closes no connection a later
        # request would still try to use.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0), limits=httpx.Limits(max_keepalive_connections=0)
        )

    def drain(self, backend: str) -> None:
        self.drained.add(backend)

    def in_flight(self, backend: str) -> int:
        return self._in_flight.get(backend, 0)

    def restore(self, backend: str) -> None:
        self.drained.discard(backend)

    async def close(self) -> None:
        await self._http.aclose()

    def _order(self) -> list[str]:
        live = [b for b in self.backends if b not in self.drained]
        start = next(self._turn) % max(len(live), 1)
        return live[start:] + live[:start]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        request = Request(scope, receive)
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROPPED]
        last_error: Exception | None = None
        for backend in self._order():
            outgoing = self._http.build_request(
                request.method,
                httpx.URL(backend).copy_with(
                    path=request.url.path, query=request.url.query.encode()
                ),
                headers=headers,
                content=body,
            )
            self._in_flight[backend] = self._in_flight.get(backend, 0) + 1
            try:
                try:
                    upstream = await self._http.send(outgoing, stream=True)
                except httpx.ConnectError as exc:
                    # Refused before anything was sent: safe to try the next backend.
                    last_error = exc
                    continue
                self.sent[backend] = self.sent.get(backend, 0) + 1
                response = StreamingResponse(
                    _relay(upstream),
                    status_code=upstream.status_code,
                    headers={
                        k: v for k, v in upstream.headers.items() if k.lower() not in _DROPPED
                    },
                )
                await response(scope, receive, send)
                return
            finally:
                self._in_flight[backend] -= 1
        msg = f"no backend accepted the request: {last_error!r}"
        raise RuntimeError(msg)


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        await upstream.aclose()
