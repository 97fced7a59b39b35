"""Permissions and the built-in roles that group them."""

from __future__ import annotations

from typing import Final

MODELS_READ: Final = "models:read"


MODELS_WRITE: Final = "models:write"


PREDICT: Final = "predict"


PREDICTIONS_READ: Final = "predictions:read"


JOBS_READ: Final = "jobs:read"


JOBS_WRITE: Final = "jobs:write"


AUDIT_READ: Final = "audit:read"


MEMBERS_READ: Final = "members:read"


MEMBERS_MANAGE: Final = "members:manage"


KEYS_MANAGE: Final = "keys:manage"


ROLES_MANAGE: Final = "roles:manage"


WEBHOOKS_MANAGE: Final = "webhooks:manage"


PROVIDERS_MANAGE: Final = "providers:manage"


SESSIONS_MANAGE: Final = "sessions:manage"


ORG_MANAGE: Final = "org:manage"


SYSTEM_READ: Final = "system:read"


ALL_PERMISSIONS: Final[frozenset[str]] = frozenset(
    {
        MODELS_READ,
        MODELS_WRITE,
        PREDICT,
        PREDICTIONS_READ,
        JOBS_READ,
        JOBS_WRITE,
        AUDIT_READ,
        MEMBERS_READ,
        MEMBERS_MANAGE,
        KEYS_MANAGE,
        ROLES_MANAGE,
        WEBHOOKS_MANAGE,
        PROVIDERS_MANAGE,
        SESSIONS_MANAGE,
        ORG_MANAGE,
        SYSTEM_READ,
    }
)
