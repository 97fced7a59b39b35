"""How the OpenAPI document describes authentication, so that Swagger's "Authorize"
button and client generators know what each operation needs.

Three schemes, any one of which authenticates a request that is not public:

- `bearer`: an access token from `POST /v1/auth/login` (or an API key, which is also
  accepted as a bearer token);
- `apiKey`: an API key in the `X-API-Key` header;
- `consoleSession`: the console's HttpOnly session cookie (writes also need the
  `X-CSRF-Token` header).

Public operations (the explicit list in `assay.auth.public_routes`) say so with an
empty `security` list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from assay.auth.deps import SESSION_COOKIE
from assay.auth.public_routes import is_public

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from POST /v1/auth/login, or an API key (assay_sk_…).",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key of the organisation (assay_sk_…).",
    },
    "consoleSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The console's session cookie (__Host-assay_session over https); "
        "writes also send X-CSRF-Token.",
    },
}
_ANY_CREDENTIAL: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
_METHODS = {"get", "put", "post", "delete", "patch"}


def operation_id(route: APIRoute) -> str:
    """The route function's name (`create_model`, `predict`): unique across the API, a
    test holds it, so generated clients get readable method names."""
    return route.name


def document_security(app: FastAPI) -> None:
    """Add the security schemes, and each operation's requirement, to `app.openapi()`."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            components = document.setdefault("components", {})
            components["securitySchemes"] = SECURITY_SCHEMES
            for path, item in document.get("paths", {}).items():
                for method, operation in item.items():
                    if method in _METHODS:
                        public = is_public(method.upper(), path)
                        operation["security"] = [] if public else _ANY_CREDENTIAL
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
