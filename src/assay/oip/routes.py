"""Open Inference Protocol (KServe V2) REST routes under /v2.

Same credentials, permissions, rate limits, validation and prediction records as the
native API; the wire format is in `assay.oip.schemas`, the tensor conventions in
`assay.oip.tensors` and `assay.oip.extensions`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import Message

from assay.core.db import DbSession
from assay.core.errors import AssayError, BadRequest, UnsupportedMediaType, ValidationFailed
from assay.http.json_limits import (
    JsonStructureLimits,
    is_json_media_type,
    refusal,
    refused_escape,
)
from assay.http.rate_limit import RateLimitScoring
from assay.oip import schemas as oip
from assay.oip.deps import Inference
from assay.oip.extensions import BinaryInferenceResponse
from assay.predictions.deps import CanPredict
from assay.predictions.schemas import CACHE_HEADER, CacheOutcome
from assay.registry.deps import CanReadModels
from assay.system.deps import System

BINARY_HEADER = "inference-header-content-length"
BINARY_STATE = "oip_binary_data"


def _error_message(exc: AssayError) -> str:
    """One line for OIP clients, which show only the `error` member of an error body."""
    if not exc.errors:
        return exc.detail
    fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in exc.errors[:5])
    more = f" (+{len(exc.errors) - 5} more)" if len(exc.errors) > 5 else ""
    return f"{exc.detail} [{fields}{more}]"


def _validation_failed(exc: RequestValidationError) -> ValidationFailed:
    # Submitted values are left out, as in the native API's 422s.
    errors = [
        {
            "field": ".".join(str(part) for part in err.get("loc", ())),
            "code": str(err.get("type", "")),
            "message": str(err.get("msg", "")),
        }
        for err in exc.errors()
    ]
    fields = ", ".join(sorted({e["field"] for e in errors})) or "the request"
    return ValidationFailed(f"Invalid inference request in {fields}.", errors=errors)


async def _check_body(request: Request) -> Request:
    """What must be refused before the body is parsed as JSON; with binary tensor data,
    the request the route sees carries only the JSON header (the data is in its state)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding[:32]!r} is not supported; send the body uncompressed."
        )
    body = await request.body()  # kept by the request; the body parser reuses it
    declared = request.headers.get(BINARY_HEADER)
    header, binary = body, None
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest(f"Malformed {BINARY_HEADER} header.")
        length = int(declared)
        if length > len(body):
            raise BadRequest(f"The {BINARY_HEADER} header is longer than the body.")
        header, binary = body[:length], body[length:]
    content_type = request.headers.get("content-type")
    if (
        binary is not None
        or content_type is None
        or not is_json_media_type(content_type.encode("latin-1"))
    ):
        # OIP clients often send no Content-Type, and binary requests are not JSON as a
        # whole; the JSON limits middleware only checks declared JSON, so the same rules
        # are applied here to the JSON part.
        settings = request.app.state.settings
        limits = JsonStructureLimits(settings.max_json_depth, settings.max_json_array_length)
        violation = limits.violation(header) or refused_escape(header)
        if violation is not None:
            raise refusal(violation, limits)
    if binary is None:
        return request
    state: dict[str, Any] = request.scope.setdefault("state", {})
    state[BINARY_STATE] = binary
    scope = dict(request.scope)  # shares `state`
    scope["headers"] = [
        (key, value)
        for key, value in request.scope["headers"]
        if key not in (b"content-type", b"content-length")
    ] + [(b"content-type", b"application/json"), (b"content-length", str(len(header)).encode())]

    async def receive() -> Message:
        return {"type": "http.request", "body": header, "more_body": False}

    return Request(scope, receive)


def _binary_data(request: Request) -> bytes | None:
    value = request.scope.get("state", {}).get(BINARY_STATE)
    return value if isinstance(value, bytes) else None


def _respond(
    answered: tuple[oip.InferenceResponse | BinaryInferenceResponse, CacheOutcome | None],
    response: Response,
) -> oip.InferenceResponse | Response:
    result, cache = answered
    # One row says what the prediction cache did, as the native predict route does.
    cached = {} if cache is None else {CACHE_HEADER: cache.value}
    if isinstance(result, oip.InferenceResponse):
        response.headers.update(cached)
        return result
    return Response(
        content=result.header + result.data,
        media_type="application/octet-stream",
        headers={BINARY_HEADER: str(len(result.header)), **cached},
    )


class OipRoute(APIRoute):
    """Error bodies also carry OIP's `error` member (clients such as tritonclient read
    only that), and bodies are checked before parsing (see `_check_body`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def oip_handler(request: Request) -> Response:
            try:
                if request.method == "POST":
                    request = await _check_body(request)
                return await handler(request)
            except AssayError as exc:
                exc.extra.setdefault("error", _error_message(exc))
                raise
            except RequestValidationError as exc:
                failed = _validation_failed(exc)
                failed.extra["error"] = _error_message(failed)
                raise failed from None

        return oip_handler


# OIP clients (tritonclient among them) often send JSON without a Content-Type.
router = APIRouter(
    prefix="/v2",
    tags=["open inference protocol"],
    route_class=OipRoute,
    strict_content_type=False,
)


@router.get("", summary="Server metadata")
async def server_metadata(principal: CanReadModels, inference: Inference) -> oip.ServerMetadata:
    return inference.server_metadata()


@router.get("/health/live", summary="The server answers (public)")
async def server_live() -> oip.ServerLive:
    return oip.ServerLive(live=True)


@router.get(
    "/health/ready",
    summary="The database answers (public)",
    responses={503: {"description": "A dependency is unavailable"}},
)
async def server_ready(system: System) -> oip.ServerReady:
    await system.require_ready(extra={"ready": False})
    return oip.ServerReady(ready=True)


@router.get("/models/{name}", summary="Model metadata (the production alias)")
async def model_metadata(
    name: str, principal: CanReadModels, db: DbSession, inference: Inference
) -> oip.ModelMetadata:
    return await inference.model_metadata(db, principal, name, None)


@router.get("/models/{name}/versions/{version}", summary="Model metadata of one version")
async def version_metadata(
    name: str, version: str, principal: CanReadModels, db: DbSession, inference: Inference
) -> oip.ModelMetadata:
    return await inference.model_metadata(db, principal, name, version)


@router.get(
    "/models/{name}/ready",
    summary="The model's production version loads and can score",
    responses={503: {"description": "The version is unhealthy"}},
)
async def model_ready(name: str, principal: CanReadModels, inference: Inference) -> oip.ModelReady:
    return await inference.model_ready(principal, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="The version loads and can score",
    responses={503: {"description": "The version is unhealthy"}},
)
async def version_ready(
    name: str, version: str, principal: CanReadModels, inference: Inference
) -> oip.ModelReady:
    return await inference.model_ready(principal, name, version)


_INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Output tensors as JSON; with binary outputs, the JSON header (its "
        "length in Inference-Header-Content-Length) followed by the raw data",
    },
    400: {"description": "Malformed binary tensor data, or an unsupported extension"},
    404: {"description": "No such model or version"},
    422: {"description": "Tensors that do not fit the model, or invalid rows (strict)"},
    503: {"description": "The version is unhealthy"},
}


@router.post(
    "/models/{name}/infer",
    summary="Score tensors with the production version",
    responses=_INFER_ERRORS,
    response_model=oip.InferenceResponse,
)
async def infer(
    name: str,
    body: oip.InferenceRequest,
    request: Request,
    principal: CanPredict,
    inference: Inference,
    _limit: RateLimitScoring,
    response: Response,
) -> oip.InferenceResponse | Response:
    result = await inference.infer(
        principal,
        name,
        None,
        body,
        request_id=_request_id(request),
        binary_data=_binary_data(request),
    )
    return _respond(result, response)


@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Score tensors with one version (a number or an alias)",
    responses=_INFER_ERRORS,
    response_model=oip.InferenceResponse,
)
async def infer_version(
    name: str,
    version: str,
    body: oip.InferenceRequest,
    request: Request,
    principal: CanPredict,
    inference: Inference,
    _limit: RateLimitScoring,
    response: Response,
) -> oip.InferenceResponse | Response:
    result = await inference.infer(
        principal,
        name,
        version,
        body,
        request_id=_request_id(request),
        binary_data=_binary_data(request),
    )
    return _respond(result, response)


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None
