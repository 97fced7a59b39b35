"""Outermost middleware: request id, client address, timing, access log, metrics,
and the last line of defence that turns an unexpected exception into a bare 500."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.core.logging import (
    AccessLog,
    bind_request_context,
    get_logger,
    reset_request_context,
)
from assay.core.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS
from assay.core.net import IPNetwork, resolve_client_address
from assay.core.tracing import report_exception
from assay.http.problems import internal_error_body, problem_response

REQUEST_ID_HEADER = "x-request-id"
_WELL_FORMED_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# Probes are frequent and uninteresting: logged at debug only.
QUIET_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
UNMATCHED_ROUTE = "<unmatched>"

access_log = AccessLog("assay.access")
error_log = get_logger("assay.errors")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Every request passes here first: one pass over the raw headers for the two
        # this layer reads, rather than a header object and two lookups.
        offered: bytes | None = None
        forwarded_for: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                offered = value
            elif name == b"x-forwarded-for":
                forwarded_for = value
        request_id = _request_id(offered)
        peer = scope.get("client")
        client = resolve_client_address(
            peer[0] if peer else None,
            forwarded_for.decode("latin-1") if forwarded_for is not None else None,
            self.trusted_proxies,
        )
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_address"] = client
        tokens = bind_request_context({"request_id": request_id})

        status = 500
        response_started = False
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        started = time.perf_counter()
        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            error_log.exception("unhandled_exception", path=scope.get("path"))
            report_exception(exc, request_id)
            status = 500
            if not response_started:
                response = problem_response(internal_error_body(scope))
                await response(scope, receive, send_with_request_id)
        finally:
            HTTP_IN_FLIGHT.dec()
            _record(scope, status, time.perf_counter() - started, client, request_id)
            reset_request_context(tokens)


def _request_id(offered: bytes | None) -> str:
    if offered is not None:
        text = offered.decode("latin-1")
        if _WELL_FORMED_REQUEST_ID.match(text):
            return text
    return uuid.uuid4().hex


# (route template, method, status) -> the two metric children that request updates.
# Looking them up by labels costs a validation and a lock per request; the set of keys
# is bounded (route templates, not paths; the methods and statuses HTTP has).
_MetricChildren = tuple[Any, Any]
_metric_children: dict[tuple[str, str, int], _MetricChildren] = {}


def _children(route: str, method: str, status: int) -> _MetricChildren:
    key = (route, method, status)
    found = _metric_children.get(key)
    if found is None:
        code = str(status)
        found = _metric_children[key] = (
            HTTP_REQUESTS.labels(route, method, code),
            HTTP_LATENCY.labels(route, method, code),
        )
    return found


def _record(scope: Scope, status: int, elapsed: float, client: str | None, request_id: str) -> None:
    route = _route_template(scope)
    method = scope["method"]
    requests, latency = _children(route, method, status)
    requests.inc()
    latency.observe(elapsed)
    fields: dict[str, Any] = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "client": client,
    }
    state = scope["state"]
    principal = state.get("principal_id")
    if principal is not None:
        fields["principal"] = principal
        fields["org"] = state.get("org_id")
    fields["request_id"] = request_id
    quiet = scope.get("path") in QUIET_PATHS
    access_log.write(logging.DEBUG if quiet else logging.INFO, fields)
