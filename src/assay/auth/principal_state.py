"""The cached form of a credential's checked state, and the principal built from it.

The authenticator caches, per session and per API key, what it checked (user,
organisation, role permissions, scope); these helpers write that state, read a
principal back from it, and name its cache keys.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.core.permissions import BUILTIN_ROLES
from assay.core.principal import Principal, principal_for
from assay.core.tenancy import across_tenants
from assay.orgs.models import CustomRole


def session_cache_key(session_id: uuid.UUID | str) -> str:
    return f"assay:auth:session:{session_id}"


def api_key_cache_key(key_id: str) -> str:
    return f"assay:auth:apikey:{key_id}"


async def role_permissions(db: AsyncSession, org_id: uuid.UUID, role: str) -> frozenset[str]:
    builtin = BUILTIN_ROLES.get(role)
    if builtin is not None:
        return builtin
    custom = (
        await db.execute(
            across_tenants(
                select(CustomRole).where(CustomRole.org_id == org_id, CustomRole.name == role),
                "resolving the role of an authenticating principal",
            )
        )
    ).scalar_one_or_none()
    return frozenset(custom.permissions) if custom else frozenset()


def session_state(
    user: User, org_id: uuid.UUID | None, permissions: frozenset[str], scope: str
) -> dict[str, Any]:
    return {
        "u": str(user.id),
        "o": str(org_id) if org_id else None,
        "p": sorted(permissions),
        "a": user.is_platform_admin,
        "s": scope,
    }


def principal_from_session_state(session_id: str, state: dict[str, Any], method: str) -> Principal:
    return principal_for(
        uuid.UUID(state["o"]) if state["o"] else None,
        kind="user",
        id=uuid.UUID(state["u"]),
        permissions=frozenset(state["p"]),
        session_id=uuid.UUID(session_id),
        is_platform_admin=bool(state["a"]),
        scope=state["s"],
        auth_method="cookie" if method == "cookie" else "token",
    )


def address_allowed(address: str | None, cidrs: list[str]) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
