"""The error catalogue and its rendering as RFC 9457 problem details.

Every error a client can see is one of these classes. Each has a stable ``type`` URI,
a title and a status; the handlers here turn them, and the framework's own errors,
into ``application/problem+json`` carrying the request id. Nothing internal leaks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:assay:problem:"


class AssayError(Exception):
    """Base of every error Assay reports to a client."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"
    # Errors that record evidence (failed-login counters, security events) keep the
    # request's writes: the session dependency commits before the error is rendered.
    keeps_writes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)


class BadRequest(AssayError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(AssayError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(AssayError):
    status, slug, title = 403, "forbidden", "Permission denied"


class NotFound(AssayError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AssayError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(AssayError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(AssayError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(AssayError):
    status, slug, title = 422, "validation-failed", "Request validation failed"


class RateLimited(AssayError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class DependencyUnavailable(AssayError):
    status, slug, title = 503, "dependency-unavailable", "A dependency is unavailable"


class ModelUnavailable(AssayError):
    """The model version cannot serve: it failed its integrity check or will not load."""

    status, slug, title = 503, "model-unavailable", "Model unavailable"


class InvalidModelDefinition(AssayError):
    """A schema, rules, ensemble or manifest document is malformed; `errors` names each spot."""

    status, slug, title = 422, "invalid-model-definition", "Invalid model definition"


class InvalidArtifact(AssayError):
    """Artifact bytes are not the declared format, are an archive, or cannot be loaded."""

    status, slug, title = 422, "invalid-artifact", "Invalid model artifact"


class UntrustedArtifact(AssayError):
    """Artifact refused by policy: pickle not allowed, bad or missing signature, untrusted types."""

    status, slug, title = 422, "untrusted-artifact", "Untrusted model artifact"


class ArtifactIntegrityError(AssayError):
    """Stored artifact bytes no longer match their pinned SHA-256 digest."""

    status, slug, title = 500, "artifact-integrity-failed", "Artifact failed its integrity check"


# Slugs for errors raised by the framework itself (routing, body parsing) and for the
# answers the HTTP server writes on its own (408, 431, and 503 when overloaded).
HTTP_SLUGS: dict[int, str] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    408: "request-timeout",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "rate-limited",
    431: "request-header-fields-too-large",
    503: "service-unavailable",
}


def _subclasses(cls: type[AssayError]) -> Iterator[type[AssayError]]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


def error_catalogue() -> tuple[type[AssayError], ...]:
    """Every problem type, as the class that introduces its slug, parents first.

    Built from the AssayError subclasses that exist, so a feature's own errors appear
    once its module is imported: call it after importing `assay.app`.
    """
    introduced: dict[str, type[AssayError]] = {}
    classes: list[type[AssayError]] = [AssayError, *_subclasses(AssayError)]
    for cls in classes:
        introduced.setdefault(cls.slug, cls)
    return tuple(introduced.values())


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


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    status = exc.status_code
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


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = _validation_errors(exc)
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
