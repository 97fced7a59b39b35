"""The native predict route, answered without the framework's per-request machinery.

Measured on the reference machine, routing, dependency resolution and the framework's
exception wrappers cost a predict request more than validating, scoring and recording
it do. This layer sits innermost in the middleware stack, so every protection layer
(request id, security headers, trusted hosts, CORS, rate-limit headers, body and JSON
limits, request-signing digests) still runs around it. It answers only the common,
well-formed shape of `POST /v1/models/{name}/predict`: a JSON body that parses and fits
`PredictRequest`, and a query string made only of the route's own simple parameters.
Everything else — a body that does not parse, an odd query string, another content
type — is handed, untouched, to the framework's route, which then answers exactly as it
always does. Nothing with a side effect (authentication, rate limits, scoring) runs
before that decision.

On the fast path the route's own dependencies run, in the framework's order and with
its per-request cache, from a plan compiled once from the route's declaration; the
route function itself builds the answer; an exception is answered by the handler the
application registered for it. A route whose declaration this plan cannot serve (a
dependency that reads a header parameter, a generator dependency) makes application
start-up fail, so the fast path never silently drifts from the route.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_parameterless_sub_dependant
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from assay.core.routes import iter_api_routes
from assay.http.json_limits import replaying_receive
from assay.predictions.schemas import PredictRequest
from assay.registry.schemas import MAX_VERSION_NUMBER

PREDICT_ROUTE_PATH = "/v1/models/{name}/predict"
_PREFIX = "/v1/models/"
_SUFFIX = "/predict"
_QUERY_PARAMETERS = frozenset({"alias", "version", "strict", "explain"})
# The values taken as they are; anything else (percent-escapes, other spellings of a
# boolean, signs, spaces) goes to the framework's parser.
_ALIAS = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_VERSION = re.compile(rb"[1-9][0-9]{0,9}")
_BOOLEANS = {b"true": True, b"false": False, b"1": True, b"0": False}
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})


class FastPathUnavailable(RuntimeError):
    """The predict route's declaration is one the fast path cannot serve faithfully."""


@dataclass(frozen=True, slots=True)
class _Step:
    """One dependency: its callable, the parameter its value fills, and what it needs."""

    call: Callable[..., Awaitable[Any]]
    name: str | None
    request_param: str | None
    needs: tuple[_Step, ...]


def _is_async(call: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(call):
        return True
    dunder = getattr(type(call), "__call__", None)  # noqa: B004 - a class instance's method
    return dunder is not None and inspect.iscoroutinefunction(dunder)


def _plan(dependencies: list[Dependant], where: str) -> tuple[_Step, ...]:
    steps: list[_Step] = []
    for sub in dependencies:
        call = sub.call
        label = f"{where} -> {getattr(call, '__name__', repr(call))}"
        if call is None or not _is_async(call):
            raise FastPathUnavailable(f"{label}: only async function dependencies are served")
        unsupported = (
            sub.path_params
            or sub.query_params
            or sub.header_params
            or sub.cookie_params
            or sub.body_params
            or sub.websocket_param_name
            or sub.http_connection_param_name
            or sub.response_param_name
            or sub.background_tasks_param_name
            or sub.security_scopes_param_name
        )
        if unsupported:
            raise FastPathUnavailable(f"{label}: takes parameters other than the request")
        needs = _plan(sub.dependencies, label)
        steps.append(_Step(call, sub.name, sub.request_param_name, needs))
    return tuple(steps)


async def _solve(
    steps: tuple[_Step, ...], request: Request, cache: dict[Any, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for step in steps:
        # The framework's per-request cache: a dependency reached twice runs once.
        if step.call in cache:
            value = cache[step.call]
        else:
            kwargs = await _solve(step.needs, request, cache)
            if step.request_param is not None:
                kwargs[step.request_param] = request
            value = cache[step.call] = await step.call(**kwargs)
        if step.name is not None:
            values[step.name] = value
    return values


@dataclass(frozen=True, slots=True)
class PredictRoutePlan:
    route: APIRoute
    endpoint: Callable[..., Awaitable[Any]]
    dependencies: tuple[_Step, ...]
    body_param: str
    request_param: str


def plan_predict_route(app: FastAPI) -> PredictRoutePlan:
    """The compiled plan for the predict route, or FastPathUnavailable saying why not."""
    routes = [
        r
        for r in iter_api_routes(app)
        if r.path == PREDICT_ROUTE_PATH and "POST" in (r.methods or ())
    ]
    if len(routes) != 1:
        raise FastPathUnavailable(f"expected one POST {PREDICT_ROUTE_PATH}, found {len(routes)}")
    route = routes[0]
    dependant = route.dependant
    query = {param.name for param in dependant.query_params}
    if query != _QUERY_PARAMETERS:
        raise FastPathUnavailable(f"query parameters {sorted(query)} are not the ones parsed here")
    if [param.name for param in dependant.path_params] != ["name"]:
        raise FastPathUnavailable("the only path parameter must be 'name'")
    if dependant.header_params or dependant.cookie_params or len(dependant.body_params) != 1:
        raise FastPathUnavailable("the route must take one body and no header or cookie")
    body = dependant.body_params[0]
    if body.field_info.annotation is not PredictRequest:
        raise FastPathUnavailable("the body must be a PredictRequest")
    if dependant.request_param_name is None:
        raise FastPathUnavailable("the route must take the request")
    if route.status_code is not None or not inspect.iscoroutinefunction(route.endpoint):
        raise FastPathUnavailable("the route must be an async function with the default status")
    # The application router's own dependencies (the default rate limit) run first, as
    # the framework runs them; they are not part of the route's declaration.
    application_wide = [
        get_parameterless_sub_dependant(depends=depends, path=route.path_format)
        for depends in app.router.dependencies
    ]
    return PredictRoutePlan(
        route=route,
        endpoint=route.endpoint,
        dependencies=_plan([*application_wide, *dependant.dependencies], PREDICT_ROUTE_PATH),
        body_param=body.name,
        request_param=dependant.request_param_name,
    )


def _query(raw: bytes) -> dict[str, Any] | None:
    """The route's query parameters, when every one is in a form read here as-is."""
    found: dict[str, Any] = {"alias": None, "version": None, "strict": False, "explain": True}
    if not raw:
        return found
    seen: set[str] = set()
    for part in raw.split(b"&"):
        key_bytes, separator, value = part.partition(b"=")
        key = key_bytes.decode("latin-1")
        if not separator or key not in _QUERY_PARAMETERS or key in seen:
            return None
        seen.add(key)
        if key == "alias":
            if not _ALIAS.fullmatch(value):
                return None
            found["alias"] = value.decode("ascii")
        elif key == "version":
            if not _VERSION.fullmatch(value) or int(value) > MAX_VERSION_NUMBER:
                return None
            found["version"] = int(value)
        else:
            flag = _BOOLEANS.get(value)
            if flag is None:
                return None
            found[key] = flag
    return found


def _content_type(scope: Scope) -> bytes | None:
    found: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if found is not None:
                return None
            found = value
    return found


class PredictFastPath:
    """Innermost ASGI layer answering well-formed native predict requests directly."""

    def __init__(self, app: ASGIApp, plan: PredictRoutePlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith(_PREFIX)
            or not path.endswith(_SUFFIX)
        ):
            await self.app(scope, receive, send)
            return
        name = path[len(_PREFIX) : -len(_SUFFIX)]
        query = _query(scope["query_string"])
        content_type = _content_type(scope)
        if (
            not name
            or "/" in name
            or query is None
            or content_type is None
            or content_type.lower() not in _JSON_TYPES
        ):
            await self.app(scope, receive, send)
            return
        # From here the request is this route's: the body limit and the logs read it.
        scope["route"] = self.plan.route
        scope["endpoint"] = self.plan.endpoint
        scope["path_params"] = {"name": name}
        try:
            body = await _read_body(receive)
        except StarletteHTTPException as exc:  # the body limit, raised from receive
            await _answer_error(scope, receive, send, exc)
            return
        if body is None:
            return  # the client went away; nobody is left to answer
        replay = replaying_receive(body, receive)
        try:
            parsed = PredictRequest.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            # The framework's parser names what is wrong, in its own words.
            await self.app(scope, replay, send)
            return
        request = Request(scope, replay)
        try:
            values = await _solve(self.plan.dependencies, request, {})
            values.update(query)
            values["name"] = name
            values[self.plan.body_param] = parsed
            values[self.plan.request_param] = request
            response = await self.plan.endpoint(**values)
        except Exception as exc:  # noqa: BLE001 - answered by the registered handler
            await _answer_error(scope, replay, send, exc)
            return
        await response(scope, replay, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _handler_for(app: Any, exc: Exception) -> Callable[..., Any] | None:
    # As the framework's exception layer looks them up: a status code's handler for
    # HTTP exceptions, then the nearest class. Exception itself belongs to the outer
    # layers (a 500 with no internals), so it is never taken here.
    handlers: dict[Any, Callable[..., Any]] = app.exception_handlers
    if isinstance(exc, StarletteHTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


async def _answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    handler = _handler_for(scope["app"], exc)
    if handler is None:
        raise exc
    response = handler(Request(scope, receive), exc)
    if inspect.isawaitable(response):
        response = await response
    await response(scope, receive, send)


def install_predict_fast_path(app: FastAPI) -> None:
    """Serve the predict route through the fast path; call after the routers are included.

    Appended to the end of the middleware list, so it is the innermost layer.
    """
    plan = plan_predict_route(app)
    app.user_middleware.append(Middleware(PredictFastPath, plan=plan))
