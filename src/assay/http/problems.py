"""Errors rendered as RFC 9457 problem details (``application/problem+json``).

The handlers here turn the catalogue's errors (`assay.core.errors`), and the
framework's own (routing, body parsing, a database uniqueness race), into problem
documents carrying the request id. Nothing internal leaks. The protection middleware
uses `problem_body` and `problem_response` to answer before any route runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import File, Form
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from assay.core.errors import (
    HTTP_SLUGS,
    PROBLEM_TYPE_PREFIX,
    AssayError,
    BadRequest,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"


def request_id_of(scope: Mapping[str, Any]) -> str | None:
    state = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def problem_body(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    request_id: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return body


def problem_response(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(
        dict(body),
        status_code=int(body["status"]),
        headers=dict(headers or {}),
        media_type=PROBLEM_CONTENT_TYPE,
    )


def internal_error_body(scope: Mapping[str, Any]) -> dict[str, Any]:
    return problem_body(
        status=500,
        slug=AssayError.slug,
        title=AssayError.title,
        detail="The server could not complete the request; quote the request id when reporting it.",
        instance=str(scope.get("path", "")),
        request_id=request_id_of(scope),
    )


def _field_path(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The submitted value is deliberately left out: it may be a password or a token.
    return [
        {
            "field": _field_path(err.get("loc", ())),
            "message": str(err.get("msg", "")),
            "code": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


async def _assay_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AssayError)  # noqa: S101 - registered for this type only
    extra = dict(exc.extra)
    if exc.errors is not None:
        extra["errors"] = exc.errors
    body = problem_body(
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        request_id=request_id_of(request.scope),
        extra=extra,
    )
    return problem_response(body, exc.headers)


# Starlette's form parser reports a part over its size limit as a 400 with one of these
# messages; it is a body that is too large, so it is answered as one (413).
_OVERSIZED_PART = ("Part exceeded maximum size", "Field exceeded maximum size")


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    status = exc.status_code
    if status == 400 and isinstance(exc.detail, str) and exc.detail.startswith(_OVERSIZED_PART):
        status = PayloadTooLarge.status
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else title
    if status >= 500:
        detail = title  # framework 5xx details are internal
    body = problem_body(
        status=status,
        slug=HTTP_SLUGS.get(status, f"http-{status}"),
        title=title,
        detail=detail,
        instance=request.url.path,
        request_id=request_id_of(request.scope),
    )
    return problem_response(body, exc.headers)


def _json_body_route(request: Request) -> bool:
    """Whether the matched route reads its body as JSON (not a form or an upload)."""
    route = request.scope.get("route")
    body = getattr(route, "body_field", None)
    return body is not None and not isinstance(body.field_info, Form | File)


def _sent_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = _validation_errors(exc)
    if _json_body_route(request) and not _sent_json(request):
        # Not a wrong value: a wrong media type (text/plain, a form, none at all).
        body = problem_body(
            status=UnsupportedMediaType.status,
            slug=UnsupportedMediaType.slug,
            title=UnsupportedMediaType.title,
            detail="Send the body as application/json.",
            instance=request.url.path,
            request_id=request_id_of(request.scope),
        )
        return problem_response(body)
    if any(error["code"] == "json_invalid" for error in errors):
        # Malformed syntax is a 400: nothing was there to validate.
        body = problem_body(
            status=BadRequest.status,
            slug=BadRequest.slug,
            title=BadRequest.title,
            detail="The body is not valid JSON.",
            instance=request.url.path,
            request_id=request_id_of(request.scope),
            extra={"errors": errors},
        )
        return problem_response(body)
    fields = ", ".join(sorted({e["field"] for e in errors})) or "the request"
    body = problem_body(
        status=ValidationFailed.status,
        slug=ValidationFailed.slug,
        title=ValidationFailed.title,
        detail=f"Invalid input in {fields}.",
        instance=request.url.path,
        request_id=request_id_of(request.scope),
        extra={"errors": errors},
    )
    return problem_response(body)


async def _integrity_error_handler(request: Request, exc: Exception) -> Response:
    # A uniqueness race that a service's own check could not see (two requests creating
    # the same thing at once): the database refused the second write, nothing was half
    # written, and the client is told it conflicts rather than given a 500.
    body = problem_body(
        status=Conflict.status,
        slug=Conflict.slug,
        title=Conflict.title,
        detail="The change conflicts with data written at the same time; retry it.",
        instance=request.url.path,
        request_id=request_id_of(request.scope),
    )
    return problem_response(body)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AssayError, _assay_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(IntegrityError, _integrity_error_handler)
