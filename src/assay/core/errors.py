"""The error catalogue: the base every error a client can see derives from.

Every error a client can see is one of these classes (or a feature's own, in its
package's `errors.py`). Each has a stable ``type`` URI, a title and a status;
`assay.http.problems` renders them as RFC 9457 problem details. This module imports
no web, database or network library, so the scoring engine can raise these errors
when it is used as a library.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

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


# Slugs for errors raised by the framework itself (routing, body parsing) and for the
# answers the HTTP server writes on its own (408, 431, and 503 when overloaded).
HTTP_SLUGS: dict[int, str] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
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
