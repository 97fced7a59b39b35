"""Who is calling: the principal every non-public route requires.

A `Principal` may act in no organisation (a platform administrator between
organisations, a user with no membership). An `OrgPrincipal` always acts in one: the
authenticator builds one whenever the credential names an organisation, and every
organisation route's permission dependency admits only those, so services receive an
`org_id` that is never None.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from assay.core.permissions import ALL_PERMISSIONS

PrincipalKind = Literal["user", "api_key", "platform", "scraper"]
FULL_SCOPE = "full"
MFA_ENROLMENT_SCOPE = "mfa_enrolment"
PASSWORD_CHANGE_SCOPE = "password_change"  # noqa: S105 - a scope name  # nosec B105
# The operator's metrics scraper: reads GET /metrics and nothing else.
METRICS_SCOPE = "metrics"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: uuid.UUID
    org_id: uuid.UUID | None
    permissions: frozenset[str]
    session_id: uuid.UUID | None = None
    is_platform_admin: bool = False
    scope: str = FULL_SCOPE
    # API keys: the key's own id, for rate limits and logs.
    key_id: str | None = None
    auth_method: Literal["token", "api_key", "cookie", "cli"] = "token"
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def actor_id(self) -> str:
        return str(self.id)


@dataclass(frozen=True, slots=True)
class OrgPrincipal(Principal):
    """A principal acting inside one organisation."""

    org_id: uuid.UUID


def principal_for(org_id: uuid.UUID | None, **fields: Any) -> Principal:
    """An `OrgPrincipal` when there is an organisation, else a plain `Principal`."""
    if org_id is not None:
        return OrgPrincipal(org_id=org_id, **fields)
    return Principal(org_id=None, **fields)


PLATFORM = Principal(
    kind="platform",
    id=uuid.UUID(int=0),
    org_id=None,
    permissions=ALL_PERMISSIONS,
    is_platform_admin=True,
    auth_method="cli",
)


# The scrape token's principal: no organisation, no permission, a scope of its own.
METRICS_SCRAPER = Principal(
    kind="scraper",
    id=uuid.UUID(int=1),
    org_id=None,
    permissions=frozenset(),
    scope=METRICS_SCOPE,
    auth_method="token",
)


def platform_in(org_id: uuid.UUID) -> OrgPrincipal:
    """The CLI acting inside one organisation."""
    return OrgPrincipal(
        kind="platform",
        id=uuid.UUID(int=0),
        org_id=org_id,
        permissions=ALL_PERMISSIONS,
        is_platform_admin=True,
        auth_method="cli",
    )
