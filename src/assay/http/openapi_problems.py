"""Document the RFC 9457 problem responses every operation can return, and the bound
on path parameters that the request limits enforce for every route.

Errors are rendered by one handler (core/errors.py), whatever the route, so the OpenAPI
document says so once per operation: each gets the problem statuses below, with an
`application/problem+json` body, replacing FastAPI's default 422 schema, which does not
describe our validation problems. Routes may still declare their own responses; a
declared description is kept, and a declared body is left alone.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from assay.http.body_limit import MAX_PATH_SEGMENT_LENGTH
from assay.http.problems import PROBLEM_CONTENT_TYPE

PROBLEM_STATUSES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503)
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; some problems add members (errors, reason).",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _is_framework_validation_body(content: dict[str, Any]) -> bool:
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def add_problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every operation answering the problem statuses with a Problem body."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in PROBLEM_STATUSES:
                entry = responses.setdefault(str(status), {})
                entry.setdefault("description", HTTPStatus(status).phrase)
                content = entry.get("content")
                if not content or _is_framework_validation_body(content):
                    entry["content"] = {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}}
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def bound_path_parameters(document: dict[str, Any]) -> dict[str, Any]:
    """Give every string path parameter the `maxLength` that BodySizeLimitMiddleware
    enforces on path segments, unless it declares a tighter one."""
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            for parameter in operation.get("parameters", ()):
                schema = parameter.get("schema", {})
                if parameter.get("in") != "path" or schema.get("type") != "string":
                    continue
                declared = schema.get("maxLength", MAX_PATH_SEGMENT_LENGTH)
                schema["maxLength"] = min(declared, MAX_PATH_SEGMENT_LENGTH)
    return document


def document_problem_responses(app: FastAPI) -> None:
    """Make `app.openapi()` include the problem responses (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = bound_path_parameters(add_problem_responses(document))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
