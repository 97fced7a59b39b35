"""Permissions and the built-in roles that group them."""

from __future__ import annotations

from typing import Final

from assay.core.permissions import (
    ALL_PERMISSIONS,
    AUDIT_READ,
    JOBS_READ,
    JOBS_WRITE,
    KEYS_MANAGE,
    MEMBERS_MANAGE,
    MEMBERS_READ,
    MODELS_READ,
    MODELS_WRITE,
    PREDICT,
    PREDICTIONS_READ,
    PROVIDERS_MANAGE,
    ROLES_MANAGE,
    SESSIONS_MANAGE,
    SYSTEM_READ,
    WEBHOOKS_MANAGE,
)

_VIEWER = frozenset({MODELS_READ, JOBS_READ, MEMBERS_READ})


_ANALYST = _VIEWER | {PREDICT, PREDICTIONS_READ, JOBS_WRITE}


_MAINTAINER = _ANALYST | {MODELS_WRITE, WEBHOOKS_MANAGE, PROVIDERS_MANAGE}


_ADMIN = _MAINTAINER | {
    AUDIT_READ,
    MEMBERS_MANAGE,
    KEYS_MANAGE,
    ROLES_MANAGE,
    SESSIONS_MANAGE,
    SYSTEM_READ,
}


_OWNER = ALL_PERMISSIONS


BUILTIN_ROLES: Final[dict[str, frozenset[str]]] = {
    "owner": _OWNER,
    "admin": _ADMIN,
    "maintainer": _MAINTAINER,
    "analyst": _ANALYST,
    "viewer": _VIEWER,
}


OWNER_ROLE: Final = "owner"
