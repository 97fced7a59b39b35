"""Request and response bodies of the identity routes.

Every request model forbids unknown fields, so `org_id`, `role` or `is_platform_admin`
smuggled into a body is a 422, never a silent mass assignment.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, WithJsonSchema

from assay.core.schemas import AwareIsoDatetime, StrictRequest, Unpadded
from assay.identity.permissions import ALL_PERMISSIONS

Email = Annotated[
    str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
]
# Long enough for any passphrase (policy caps at 1,024 code points); never truncated.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9-]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), Unpadded()]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]
# Documented as the enum it is; an unknown name is refused by the service, with its code.
Permission = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    WithJsonSchema({"type": "string", "enum": sorted(ALL_PERMISSIONS)}),
]


class Strict(StrictRequest):
    """Request bodies: no unknown fields, no coercion, no trimming (assay.core.schemas)."""


class LoginRequest(Strict):
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


class MfaRequest(Strict):
    challenge: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    code: Annotated[str, StringConstraints(min_length=6, max_length=32)]
    session: Literal["token", "console"] = "token"


class RefreshRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class SwitchOrgRequest(Strict):
    org: Slug


class ConsoleSessionResponse(BaseModel):
    csrf_token: str
    org_id: uuid.UUID | None
    scope: str


class MeResponse(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    org_id: uuid.UUID | None
    permissions: list[str]
    mfa_enabled: bool
    is_platform_admin: bool
    scope: str


class MeUpdate(Strict):
    display_name: Annotated[str, StringConstraints(max_length=200), Unpadded()]


class PasswordChangeRequest(Strict):
    current_password: Password
    new_password: Password


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


class TotpConfirm(Strict):
    code: Annotated[str, StringConstraints(min_length=6, max_length=6, pattern=r"^\d{6}$")]


class BackupCodes(BaseModel):
    backup_codes: list[str]


class ReauthRequest(Strict):
    password: Password


class ApiKeyCreate(Strict):
    name: Name
    scopes: list[Permission] = Field(min_length=1, max_length=32)
    # With a time zone (or Z): a bare local time would be a guess about which one.
    expires_at: AwareIsoDatetime | None = None
    allowed_cidrs: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=32
    )
    signing_required: bool = False


class ApiKeyView(BaseModel):
    id: uuid.UUID
    key_id: str
    name: str
    scopes: list[str]
    allowed_cidrs: list[str]
    signing_required: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_address: str | None


class ApiKeyCreated(ApiKeyView):
    key: str = Field(description="The full key. Shown once; store it now.")
    signing_secret: str | None = Field(
        default=None,
        description=(
            "For keys with signing_required: the HMAC-SHA256 key (base64url) that signs "
            "requests. Shown once; store it now."
        ),
    )


class OrganisationView(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    status: str
    mfa_required: bool
    mfa_required_roles: list[str]
    min_password_length: int | None = Field(
        description="The organisation's minimum password length; null means the server's."
    )
    scoring_quota: str | None = Field(
        description="The organisation's scoring quota (limits notation); null means the "
        "server's default."
    )
    created_at: datetime


class OrganisationCreate(Strict):
    name: Name
    slug: Slug | None = None
    owner_email: Email | None = Field(
        default=None,
        description="Invite this address as the organisation's owner (a link by email).",
    )


class OrganisationCreated(OrganisationView):
    owner_invitation_id: uuid.UUID | None = None


class OrganisationPolicyUpdate(Strict):
    """PATCH /v1/org: only the fields sent change."""

    name: Name | None = None
    mfa_required: bool | None = None
    mfa_required_roles: list[RoleName] | None = Field(default=None, max_length=64)
    min_password_length: int | None = Field(
        default=None,
        ge=8,
        le=128,
        description="Below the server's minimum (15) only while mfa_required is true; "
        "null restores the server's.",
    )


class OrganisationAdminUpdate(Strict):
    """PATCH /v1/admin/orgs/{id}: only the fields sent change."""

    scoring_quota: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description='Scoring quota in limits notation ("100/minute;10000/day"); null '
        "restores the server's default.",
    )


class EmailChangeRequest(Strict):
    new_email: Email
    password: Password


class UnlockedView(BaseModel):
    user_id: uuid.UUID
    was_locked: bool


class MemberView(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    joined_at: datetime


class MemberUpdate(Strict):
    role: RoleName


class RoleView(BaseModel):
    name: str
    permissions: list[str]
    builtin: bool


class RoleCreate(Strict):
    name: RoleName
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    permissions: list[Permission] = Field(min_length=1, max_length=64)
