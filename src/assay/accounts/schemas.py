"""Request and response bodies of the email flows: reset, verification, invitations, sign-up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import Email, Name, Password, RoleName, StrictRequest, Unpadded

# Our tokens are 43 characters; the bounds only keep nonsense out of the digest lookup.
EmailLinkToken = Annotated[str, StringConstraints(min_length=16, max_length=256)]


DisplayName = Annotated[str, StringConstraints(max_length=200), Unpadded()]


class Accepted(BaseModel):
    detail: str


class ForgotPasswordRequest(StrictRequest):
    email: Email


class ResetPasswordRequest(StrictRequest):
    token: EmailLinkToken
    new_password: Password


class VerifyEmailRequest(StrictRequest):
    token: EmailLinkToken


class SignupRequest(StrictRequest):
    email: Email
    password: Password
    display_name: Name
    organisation_name: Name


class InvitationCreate(StrictRequest):
    email: Email
    role: RoleName


class InvitationView(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime


class AcceptInvitationRequest(StrictRequest):
    token: EmailLinkToken
    password: Password = Field(
        description="A new password if the address has no account yet; otherwise the "
        "account's current password."
    )
    display_name: DisplayName = Field("", description="Used only when a new account is created.")


class InvitationAccepted(BaseModel):
    org_id: uuid.UUID
    org_slug: str
    org_name: str
    role: str


class MeResponse(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    org_id: uuid.UUID | None
    permissions: list[str]
    mfa_enabled: bool
    is_platform_admin: bool
    scope: str


class MeUpdate(StrictRequest):
    display_name: Annotated[str, StringConstraints(max_length=200), Unpadded()]


class PasswordChangeRequest(StrictRequest):
    current_password: Password
    new_password: Password


class EmailChangeRequest(StrictRequest):
    new_email: Email
    password: Password
