"""Request and response bodies of the email flows: reset, verification, invitations, sign-up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import Unpadded
from assay.identity.schemas import Email, Name, Password, RoleName, Strict

# Our tokens are 43 characters; the bounds only keep nonsense out of the digest lookup.
EmailLinkToken = Annotated[str, StringConstraints(min_length=16, max_length=256)]
DisplayName = Annotated[str, StringConstraints(max_length=200), Unpadded()]


class Accepted(BaseModel):
    detail: str


class ForgotPasswordRequest(Strict):
    email: Email


class ResetPasswordRequest(Strict):
    token: EmailLinkToken
    new_password: Password


class VerifyEmailRequest(Strict):
    token: EmailLinkToken


class SignupRequest(Strict):
    email: Email
    password: Password
    display_name: Name
    organisation_name: Name


class InvitationCreate(Strict):
    email: Email
    role: RoleName


class InvitationView(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime


class AcceptInvitationRequest(Strict):
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
