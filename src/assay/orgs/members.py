"""Organisations, their policy and quota, members and roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.api_keys import service as api_keys
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.auth.deps import IdentityContext
from assay.auth.models import AuthSession
from assay.auth.service import (
    check_grantable,
    end_sessions,
    lock_state,
    record_unlock,
    require_authority_over,
)
from assay.auth.service import unlock as clear_locks
from assay.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from assay.core.permissions import ALL_PERMISSIONS, BUILTIN_ROLES, OWNER_ROLE
from assay.core.principal import FULL_SCOPE, MFA_ENROLMENT_SCOPE, OrgPrincipal
from assay.core.tenancy import scoped
from assay.orgs.models import CustomRole, Membership, Organisation
from assay.orgs.service import _mfa_applies


async def permissions_of_role(
    db: AsyncSession, principal: OrgPrincipal, role: str
) -> frozenset[str]:
    builtin = BUILTIN_ROLES.get(role)
    if builtin is not None:
        return builtin
    custom = (
        await db.execute(scoped(principal, CustomRole).where(CustomRole.name == role))
    ).scalar_one_or_none()
    if custom is None:
        raise ValidationFailed(
            f"There is no role named '{role}'.",
            errors=[{"field": "role", "code": "unknown_role", "message": "no such role"}],
        )
    return frozenset(custom.permissions)


async def list_members(db: AsyncSession, principal: OrgPrincipal) -> list[tuple[Membership, User]]:
    statement = (
        scoped(principal, Membership)
        .add_columns(User)
        .join(User, User.id == Membership.user_id)
        .order_by(User.email)
    )
    rows = await db.execute(statement)
    return [(row[0], row[1]) for row in rows.all()]


async def _membership(db: AsyncSession, principal: OrgPrincipal, user_id: uuid.UUID) -> Membership:
    membership = (
        await db.execute(scoped(principal, Membership).where(Membership.user_id == user_id))
    ).scalar_one_or_none()
    if membership is None:
        raise NotFound("No such member.")
    return membership


async def _owner_count(db: AsyncSession, principal: OrgPrincipal) -> int:
    statement = scoped(principal, Membership).where(Membership.role == OWNER_ROLE)
    count = await db.execute(select(func.count()).select_from(statement.subquery()))
    return int(count.scalar_one())


async def _member_sessions(
    db: AsyncSession, principal: OrgPrincipal, user_id: uuid.UUID
) -> list[AuthSession]:
    statement = scoped(principal, AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    return list((await db.execute(statement)).scalars())


async def change_member_role(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: OrgPrincipal,
    user_id: uuid.UUID,
    role: str,
) -> tuple[Membership, User]:
    """Give a member another role; returns the membership and the member."""
    membership = await _membership(db, principal, user_id)
    granted = await permissions_of_role(db, principal, role)
    check_grantable(
        principal,
        granted,
        field="role",
        code="role_exceeds_yours",
        detail="You cannot grant a role with permissions you do not have.",
    )
    await require_authority_over(
        db, principal, membership.user_id, "change the role of", role=membership.role
    )
    before = membership.role
    if before == OWNER_ROLE and role != OWNER_ROLE and await _owner_count(db, principal) <= 1:
        raise Conflict("The last owner cannot be demoted; make someone else owner first.")
    if before == role:
        return membership, await db.get_one(User, user_id)
    membership.role = role
    await db.flush()
    sessions = await _member_sessions(db, principal, user_id)
    # A console session gets a new id at every privilege change: it ends, and the member
    # signs in again. Token sessions keep going with the new role from their next request,
    # reaching only MFA enrolment if the new role needs MFA the member has not set up.
    await end_sessions(db, identity, [s for s in sessions if s.kind == "console"], "role_changed")
    tokens = [s for s in sessions if s.kind != "console"]
    restricted = 0
    if await _lacks_mfa_required_of(db, principal, user_id, role):
        for session in tokens:
            if session.scope == FULL_SCOPE:
                session.scope = MFA_ENROLMENT_SCOPE
                restricted += 1
        await db.flush()
    identity.authenticator.forget_sessions(db, [s.id for s in tokens])
    await api_keys.revoke_keys_of_creator(
        db,
        identity,
        meta,
        principal,
        user_id,
        reason="creator_role_changed",
        still_allowed=granted,
    )
    record_event(
        db,
        meta,
        action=SecurityAction.MEMBER_ROLE_CHANGED,
        actor=principal,
        target_kind="user",
        target_id=user_id,
        details={"before": before, "after": role, "sessions_restricted": restricted},
    )
    return membership, await db.get_one(User, user_id)


async def _lacks_mfa_required_of(
    db: AsyncSession, principal: OrgPrincipal, user_id: uuid.UUID, role: str
) -> bool:
    """Whether the organisation requires MFA of `role` and the member has none."""
    org = await db.get_one(Organisation, principal.org_id)
    if not _mfa_applies(org.mfa_required, org.mfa_required_roles or [], role):
        return False
    user = await db.get_one(User, user_id)
    return not user.mfa_enabled


async def remove_member(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: OrgPrincipal,
    user_id: uuid.UUID,
) -> None:
    membership = await _membership(db, principal, user_id)
    await require_authority_over(db, principal, membership.user_id, "remove", role=membership.role)
    if membership.role == OWNER_ROLE and await _owner_count(db, principal) <= 1:
        raise Conflict("The last owner cannot be removed.")
    role = membership.role
    await db.delete(membership)
    await end_sessions(
        db, identity, await _member_sessions(db, principal, user_id), "membership_removed"
    )
    # A key never outlives its creator's place in the organisation.
    await api_keys.revoke_keys_of_creator(
        db, identity, meta, principal, user_id, reason="creator_removed"
    )
    record_event(
        db,
        meta,
        action=SecurityAction.MEMBER_REMOVED,
        actor=principal,
        target_kind="user",
        target_id=user_id,
        details={"before": role, "after": None},
    )


async def unlock_member(
    db: AsyncSession,
    meta: RequestMeta,
    principal: OrgPrincipal,
    user_id: uuid.UUID,
) -> dict[str, Any]:
    """Clear a member's failure counters and locks (a hard lock too); returns what was locked.

    A platform administrator's account is unlocked only by an operator (`assay admin
    unlock`), never from inside an organisation.
    """
    membership = await _membership(db, principal, user_id)
    await require_authority_over(db, principal, membership.user_id, "unlock", role=membership.role)
    user = await db.get_one(User, user_id)
    if user.is_platform_admin:
        raise Forbidden("A platform administrator is unlocked by an operator: assay admin unlock.")
    before = lock_state(user, datetime.now(UTC))
    clear_locks(user)
    record_unlock(db, meta, user, before, by="org_admin", actor=principal)
    return before


async def list_roles(
    db: AsyncSession, principal: OrgPrincipal
) -> list[tuple[str, list[str], bool]]:
    roles = [(name, sorted(perms), True) for name, perms in BUILTIN_ROLES.items()]
    custom = (await db.execute(scoped(principal, CustomRole).order_by(CustomRole.name))).scalars()
    roles.extend((role.name, sorted(role.permissions), False) for role in custom)
    return roles


async def create_role(
    db: AsyncSession,
    meta: RequestMeta,
    principal: OrgPrincipal,
    *,
    name: str,
    description: str,
    permissions: list[str],
) -> CustomRole:
    unknown = sorted(set(permissions) - ALL_PERMISSIONS)
    if unknown:
        raise ValidationFailed(
            "Unknown permissions.",
            errors=[
                {
                    "field": "permissions",
                    "code": "unknown_permission",
                    "message": ", ".join(unknown),
                }
            ],
        )
    check_grantable(
        principal,
        permissions,
        field="permissions",
        code="permission_not_held",
        detail="A role cannot hold permissions its creator does not have.",
    )
    if name in BUILTIN_ROLES:
        raise Conflict(f"'{name}' is a built-in role.")
    existing = await db.execute(scoped(principal, CustomRole).where(CustomRole.name == name))
    if existing.first() is not None:
        raise Conflict(f"A role named '{name}' exists.")
    role = CustomRole(
        org_id=principal.org_id,
        name=name,
        description=description,
        permissions=sorted(set(permissions)),
    )
    db.add(role)
    await db.flush()
    record_event(
        db,
        meta,
        action=SecurityAction.ROLE_CREATED,
        actor=principal,
        target_kind="role",
        target_id=role.id,
        details={"name": name, "permissions": role.permissions},
    )
    return role
