"""Request and response bodies of the identity routes.

Every request model forbids unknown fields, so `org_id`, `role` or `is_platform_admin`
smuggled into a body is a 422, never a silent mass assignment.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from assay.auth.sessions import TokenPair
from assay.core.schemas import Email, Password, Slug, StrictRequest


class LoginRequest(StrictRequest):
    email: Email
    password: Password
    org: Slug | None = None


class TokenResponse(BaseModel):
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name
    access_token: str
    refresh_token: str
    expires_in: int
    org_id: uuid.UUID | None
    scope: str = Field(description="'full', or the step still required before full access.")


class MfaChallengeResponse(BaseModel):
    mfa_required: Literal[True] = True
    challenge: str
    expires_in: int


class MfaRequest(StrictRequest):
    challenge: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    code: Annotated[str, StringConstraints(min_length=6, max_length=32)]
    session: Literal["token", "console"] = "token"


class RefreshRequest(StrictRequest):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class SwitchOrgRequest(StrictRequest):
    org: Slug


class ConsoleSessionResponse(BaseModel):
    csrf_token: str
    org_id: uuid.UUID | None
    scope: str


class SessionView(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    org_id: uuid.UUID | None
    kind: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str
    client_address: str | None
    current: bool = False


class TotpEnrolment(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class TotpConfirm(StrictRequest):
    code: Annotated[str, StringConstraints(min_length=6, max_length=6, pattern=r"^\d{6}$")]


class BackupCodes(BaseModel):
    backup_codes: list[str]


class ReauthRequest(StrictRequest):
    password: Password


class CsrfTokenResponse(BaseModel):
    csrf_token: str = Field(description="Send it as X-CSRF-Token on unsafe requests.")
    expires_in: int = Field(description="Seconds until the token is refused.")


def tokens_of(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        org_id=pair.org_id,
        scope=pair.scope,
    )
