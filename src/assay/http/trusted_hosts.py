"""Answer only for the host names we serve (400 problem otherwise).

A forged Host header is how password-reset links get pointed at an attacker and how
shared caches get poisoned; refusing unknown hosts closes both. The probes are exempt:
orchestrators address them by pod IP, and they build no URL from the host.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from assay.core.errors import BadRequest
from assay.http.problems import problem_body, problem_response, request_id_of

PROBE_PATHS = frozenset({"/livez", "/readyz"})


def host_of_url(url: str) -> str | None:
    return urlsplit(url).hostname


def _host_without_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [v6::literal]:port
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    return host.rsplit(":", 1)[0] if ":" in host else host


class TrustedHostMiddleware:
    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        exact: set[str] = set()
        suffixes: list[str] = []
        for entry in allowed_hosts:
            name = entry.strip().lower().rstrip(".")
            if name.startswith("*."):
                suffixes.append(name[1:])  # "*.example.org" admits "a.example.org" only
            elif ":" in name and not name.startswith("["):
                exact.add(f"[{name}]")  # a bare IPv6 address, as it appears in Host
            elif name:
                exact.add(name)
        self.exact = frozenset(exact)
        self.suffixes = tuple(suffixes)

    def is_allowed(self, host_header: str) -> bool:
        host = _host_without_port(host_header).rstrip(".")
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        host = next((v for k, v in scope["headers"] if k == b"host"), None)
        if host is not None and self.is_allowed(host.decode("latin-1")):
            await self.app(scope, receive, send)
            return
        body = problem_body(
            status=BadRequest.status,
            slug=BadRequest.slug,
            title=BadRequest.title,
            # The offending value is not echoed: it is attacker-controlled.
            detail="The Host header does not name a host this server answers for.",
            instance=str(scope.get("path", "")),
            request_id=request_id_of(scope),
        )
        await problem_response(body)(scope, receive, send)
