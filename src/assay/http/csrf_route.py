"""``GET /v1/auth/csrf-token``: a fresh CSRF token for the caller's session.

CSRF tokens expire (`csrf_token_max_age_seconds`, see `assay.auth.csrf`); a console
keeps working past that by fetching a new one here, typically when a write answers 403
with ``reason: token-expired``. A GET: it changes nothing, so it needs no token itself,
and a cross-origin page cannot read its answer (no CORS headers for unlisted origins).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from assay.auth.csrf import csrf_token
from assay.auth.deps import AnyScope, identity_of
from assay.core.errors import Forbidden

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class CsrfTokenResponse(BaseModel):
    csrf_token: str = Field(description="Send it as X-CSRF-Token on unsafe requests.")
    expires_in: int = Field(description="Seconds until the token is refused.")


@router.get(
    "/csrf-token",
    summary="A fresh CSRF token for this console session",
    responses={403: {"description": "The credentials have no session (an API key)"}},
)
async def fresh_csrf_token(principal: AnyScope, request: Request) -> CsrfTokenResponse:
    if principal.session_id is None:
        raise Forbidden("CSRF tokens belong to sessions; API keys need none.")
    identity = identity_of(request)
    return CsrfTokenResponse(
        csrf_token=csrf_token(identity.csrf_key, principal.session_id),
        expires_in=identity.settings.csrf_token_max_age_seconds,
    )
