"""The one explicit list of routes that need no principal. Everything else does."""

from __future__ import annotations

from typing import Final

PUBLIC_ROUTES: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("GET", "/livez"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("POST", "/v1/auth/login"),
        ("POST", "/v1/auth/mfa"),
        ("POST", "/v1/auth/refresh"),
        ("POST", "/v1/auth/session"),
        ("POST", "/v1/auth/password/forgot"),
        ("POST", "/v1/auth/password/reset"),
        ("POST", "/v1/auth/email/verify"),
        ("POST", "/v1/auth/invitations/accept"),
        ("POST", "/v1/auth/signup"),
        ("GET", "/v1/auth/sso/{provider}/start"),
        ("GET", "/v1/auth/sso/{provider}/callback"),
        ("GET", "/v2/health/live"),
        ("GET", "/v2/health/ready"),
    }
)


def is_public(method: str, path: str) -> bool:
    # HEAD is answered by the GET route.
    return (method, path) in PUBLIC_ROUTES or (method == "HEAD" and ("GET", path) in PUBLIC_ROUTES)
