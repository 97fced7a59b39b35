"""Request and response bodies of the identity routes.

Every request model forbids unknown fields, so `org_id`, `role` or `is_platform_admin`
smuggled into a body is a 422, never a silent mass assignment.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import Email, Name, Permission, RoleName, Slug, StrictRequest


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


class OrganisationCreate(StrictRequest):
    name: Name
    slug: Slug | None = None
    owner_email: Email | None = Field(
        default=None,
        description="Invite this address as the organisation's owner (a link by email).",
    )


class OrganisationCreated(OrganisationView):
    owner_invitation_id: uuid.UUID | None = None


class OrganisationPolicyUpdate(StrictRequest):
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


class OrganisationAdminUpdate(StrictRequest):
    """PATCH /v1/admin/orgs/{id}: only the fields sent change."""

    scoring_quota: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description='Scoring quota in limits notation ("100/minute;10000/day"); null '
        "restores the server's default.",
    )


class UnlockedView(BaseModel):
    user_id: uuid.UUID
    was_locked: bool


class MemberView(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    joined_at: datetime


class MemberUpdate(StrictRequest):
    role: RoleName


class RoleView(BaseModel):
    name: str
    permissions: list[str]
    builtin: bool


class RoleCreate(StrictRequest):
    name: RoleName
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    permissions: list[Permission] = Field(min_length=1, max_length=64)
