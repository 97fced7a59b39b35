"""Errors: one `AssayError` hierarchy built from the server's RFC 9457 problem documents.

Every non-2xx answer becomes the `AssayError` subclass of its problem `type`
(``urn:assay:problem:<slug>``), or of its HTTP status when the type is unknown (an
answer from a proxy, a newer server), so ``except NotFound`` works for both.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx

PROBLEM_TYPE_PREFIX = "urn:assay:problem:"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field (or a whole record when `field` is None)."""

    field: str | None
    code: str
    message: str

    @classmethod
    def from_json(cls, data: Any) -> FieldError:
        if not isinstance(data, dict):
            return cls(None, "unknown", str(data))
        field = data.get("field")
        return cls(
            field=None if field is None else str(field),
            code=str(data.get("code", "")),
            message=str(data.get("message", "")),
        )


class AssayError(Exception):
    """An error answer from Assay, with the members of its problem document."""

    # The problem slug this class stands for, and the status it is chosen by when the
    # type is unknown. The base stands for every other error.
    slug: ClassVar[str | None] = None
    default_status: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        status: int,
        title: str,
        detail: str,
        type: str = "about:blank",
        errors: list[FieldError] | None = None,
        request_id: str | None = None,
        instance: str | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.errors = errors or []
        self.request_id = request_id
        self.instance = instance
        self.problem = problem or {}
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.status} {self.title}"
        if self.detail and self.detail != self.title:
            text += f": {self.detail}"
        if self.errors:
            text += " (" + "; ".join(_describe(e) for e in self.errors[:10]) + ")"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text


def _describe(error: FieldError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message


class BadRequest(AssayError):
    slug, default_status = "bad-request", 400


class Unauthorized(AssayError):
    slug, default_status = "unauthorized", 401


class Forbidden(AssayError):
    slug, default_status = "forbidden", 403


class NotFound(AssayError):
    slug, default_status = "not-found", 404


class MethodNotAllowed(AssayError):
    slug, default_status = "method-not-allowed", 405


class Conflict(AssayError):
    slug, default_status = "conflict", 409


class PayloadTooLarge(AssayError):
    slug, default_status = "payload-too-large", 413


class UnsupportedMediaType(AssayError):
    slug, default_status = "unsupported-media-type", 415


class ValidationFailed(AssayError):
    slug, default_status = "validation-failed", 422


class RateLimited(AssayError):
    """429: a rate limit, quota or job cap; `retry_after` (seconds) says when to retry."""

    slug, default_status = "rate-limited", 429

    def __init__(self, *, retry_after: float | None = None, **members: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**members)


class ServerError(AssayError):
    slug, default_status = "internal-error", 500


class ServiceUnavailable(AssayError):
    slug, default_status = "service-unavailable", 503


class DependencyUnavailable(ServiceUnavailable):
    slug, default_status = "dependency-unavailable", 503


class ModelUnavailable(ServiceUnavailable):
    """503: the model version is unhealthy; `detail` says why."""

    slug, default_status = "model-unavailable", 503


_CLASSES: tuple[type[AssayError], ...] = (
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    DependencyUnavailable,
    ModelUnavailable,
)
_BY_SLUG: dict[str, type[AssayError]] = {c.slug: c for c in _CLASSES if c.slug}
_BY_STATUS: dict[int, type[AssayError]] = {}
for _class in _CLASSES:  # the first class of a status stands for it (503: ServiceUnavailable)
    if _class.default_status is not None:
        _BY_STATUS.setdefault(_class.default_status, _class)


def error_class(problem_type: str, status: int) -> type[AssayError]:
    """The class for a problem `type` URI, else for the status, else `AssayError`."""
    if problem_type.startswith(PROBLEM_TYPE_PREFIX):
        found = _BY_SLUG.get(problem_type.removeprefix(PROBLEM_TYPE_PREFIX))
        if found is not None:
            return found
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else AssayError


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds, or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def error_from_response(response: httpx.Response) -> AssayError:
    """The `AssayError` for an error answer whose body has been read."""
    problem: dict[str, Any] = {}
    try:
        parsed = json.loads(response.content) if response.content else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        problem = parsed
    status = response.status_code
    problem_type = str(problem.get("type") or "about:blank")
    title = str(problem.get("title") or response.reason_phrase or "HTTP error")
    detail_value = problem.get("detail")
    if detail_value is None and not problem:
        detail_value = response.text[:500].strip() or title
    raw_errors = problem.get("errors")
    members: dict[str, Any] = {
        "status": status,
        "title": title,
        "detail": str(detail_value if detail_value is not None else title),
        "type": problem_type,
        "errors": [FieldError.from_json(e) for e in raw_errors]
        if isinstance(raw_errors, list)
        else [],
        "request_id": problem.get("request_id") or response.headers.get("x-request-id"),
        "instance": problem.get("instance"),
        "problem": problem,
    }
    cls = error_class(problem_type, status)
    if issubclass(cls, RateLimited):
        return cls(retry_after=retry_after_seconds(response.headers.get("retry-after")), **members)
    return cls(**members)
