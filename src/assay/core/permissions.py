"""Permissions, and the built-in roles that group them.

A permission exists only while a route checks it: `GUARDS` says what each one guards,
and a test fails when one guards no route. Built-in roles are fixed sets of
permissions; organisations may define custom roles (`orgs`), which never hold more
than their creator.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Permission(StrEnum):
    """What a principal may do inside its organisation.

    Members are strings (`Permission.PREDICT == "predict"`), so permission sets read
    from tokens, caches and the database compare with them directly.
    """

    MODELS_READ = "models:read"
    MODELS_WRITE = "models:write"
    PREDICT = "predict"
    PREDICTIONS_READ = "predictions:read"
    PREDICTIONS_REVEAL = "predictions:reveal"
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    KEYS_MANAGE = "keys:manage"
    ROLES_MANAGE = "roles:manage"
    SESSIONS_MANAGE = "sessions:manage"
    ORG_MANAGE = "org:manage"
    SYSTEM_READ = "system:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    LOOKUPS_RUN = "lookups:run"
    LOOKUPS_READ = "lookups:read"
    PROVIDERS_MANAGE = "providers:manage"
    SCANS_RUN = "scans:run"
    SCANS_READ = "scans:read"
    TARGETS_MANAGE = "targets:manage"
    AUDIT_READ = "audit:read"


# What each permission guards; docs/security.md shows this with the role table.
GUARDS: Final[dict[Permission, str]] = {
    Permission.MODELS_READ: "list and read models, versions and aliases",
    Permission.MODELS_WRITE: "register models and versions, move aliases, verify versions",
    Permission.PREDICT: "score records (native predict, Open Inference Protocol infer)",
    Permission.PREDICTIONS_READ: "read prediction records",
    Permission.PREDICTIONS_REVEAL: "read a record's sealed personal-data inputs (audited)",
    Permission.JOBS_READ: "list and read jobs, follow their progress, download their results",
    Permission.JOBS_WRITE: "submit jobs (batch scoring with any model) and cancel them",
    Permission.MEMBERS_READ: "read the organisation, its members and roles",
    Permission.MEMBERS_MANAGE: "invite, remove and unlock members; change their roles",
    Permission.KEYS_MANAGE: "create and revoke API keys; trust and revoke publisher keys",
    Permission.ROLES_MANAGE: "create custom roles",
    Permission.SESSIONS_MANAGE: "list and end the sessions of the organisation's members",
    Permission.ORG_MANAGE: "change the organisation's name, MFA and password policy",
    Permission.SYSTEM_READ: "system information and the organisation's own usage",
    Permission.WEBHOOKS_READ: "list webhook endpoints, event types and the delivery log",
    Permission.WEBHOOKS_MANAGE: "register, change, test and delete webhook endpoints; "
    "rotate their secrets; re-send deliveries",
    Permission.LOOKUPS_RUN: "look an indicator up across the organisation's providers",
    Permission.LOOKUPS_READ: "read past lookups and the providers with their breaker state",
    Permission.PROVIDERS_MANAGE: "register, change and remove providers; set their credentials",
    Permission.SCANS_RUN: "start and cancel red-team scans of the organisation's targets",
    Permission.SCANS_READ: "read scans, their attempts (answers included), findings and reports",
    Permission.TARGETS_MANAGE: "register, change and remove scan targets; set their secrets",
    Permission.AUDIT_READ: "read, verify and export the organisation's audit trail",
}

ALL_PERMISSIONS: Final[frozenset[str]] = frozenset(Permission)

_VIEWER: frozenset[str] = frozenset({Permission.MODELS_READ, Permission.MEMBERS_READ})
_ANALYST = _VIEWER | {
    Permission.PREDICT,
    Permission.LOOKUPS_RUN,
    Permission.LOOKUPS_READ,
    Permission.SCANS_RUN,
    Permission.SCANS_READ,
    Permission.PREDICTIONS_READ,
    Permission.JOBS_READ,
    Permission.JOBS_WRITE,
}
_MAINTAINER = _ANALYST | {Permission.MODELS_WRITE, Permission.WEBHOOKS_READ}
_ADMIN = _MAINTAINER | {
    Permission.WEBHOOKS_MANAGE,
    Permission.PROVIDERS_MANAGE,
    Permission.PREDICTIONS_REVEAL,
    Permission.TARGETS_MANAGE,
    Permission.MEMBERS_MANAGE,
    Permission.KEYS_MANAGE,
    Permission.ROLES_MANAGE,
    Permission.SESSIONS_MANAGE,
    Permission.SYSTEM_READ,
    Permission.AUDIT_READ,
}

BUILTIN_ROLES: Final[dict[str, frozenset[str]]] = {
    "owner": ALL_PERMISSIONS,
    "admin": _ADMIN,
    "maintainer": _MAINTAINER,
    "analyst": _ANALYST,
    "viewer": _VIEWER,
}
OWNER_ROLE: Final = "owner"
