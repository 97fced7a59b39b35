"""Organisations, their policy and quota, members and roles."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from limits import parse_many
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.api_keys import service as api_keys
from assay.api_keys.models import ApiKey
from assay.audit.service import RequestMeta, record_event
from assay.auth.context import IdentityContext
from assay.auth.lockout import lock_state, record_unlock
from assay.auth.lockout import unlock as clear_locks
from assay.auth.models import AuthSession
from assay.auth.service import end_sessions, normalise_email
from assay.core.after_commit import after_commit
from assay.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from assay.core.permissions import ALL_PERMISSIONS, BUILTIN_ROLES, OWNER_ROLE
from assay.core.principal import FULL_SCOPE, MFA_ENROLMENT_SCOPE, OrgPrincipal, Principal
from assay.core.tenancy import OrganisationScope, scoped
from assay.orgs.models import CustomRole, Membership, Organisation

_SLUG = re.compile(r"[^a-z0-9]+")
MAX_PASSWORD_LENGTH_SETTING = 128


def slugify(name: str) -> str:
    slug = _SLUG.sub("-", name.lower()).strip("-")[:63]
    return slug or f"org-{secrets.token_hex(4)}"


def _invalid(field: str, code: str, message: str, detail: str | None = None) -> ValidationFailed:
    return ValidationFailed(
        detail or message, errors=[{"field": field, "code": code, "message": message}]
    )


# --- platform administration ----------------------------------------------------------


async def create_organisation(
    db: AsyncSession, meta: RequestMeta, actor: Principal, *, name: str, slug: str | None
) -> Organisation:
    chosen = slug or slugify(name)
    exists = await db.execute(select(Organisation.id).where(Organisation.slug == chosen))
    if exists.first() is not None:
        raise Conflict(f"An organisation with the slug '{chosen}' exists.")
    org = Organisation(name=name, slug=chosen, mfa_required_roles=[])
    db.add(org)
    await db.flush()
    record_event(
        db,
        meta,
        action="org.created",
        actor=actor,
        org_id=org.id,
        target_kind="organisation",
        target_id=org.id,
    )
    return org


async def list_organisations(db: AsyncSession) -> list[Organisation]:
    result = await db.execute(
        select(Organisation).where(Organisation.deleted_at.is_(None)).order_by(Organisation.slug)
    )
    return list(result.scalars())


async def get_organisation(db: AsyncSession, org_id: uuid.UUID) -> Organisation:
    org = await db.get(Organisation, org_id)
    if org is None or org.deleted_at is not None:
        raise NotFound("No such organisation.")
    return org


async def find_organisation(db: AsyncSession, slug_or_id: str) -> Organisation:
    """An organisation by slug or id (for the CLI)."""
    try:
        as_id = uuid.UUID(slug_or_id)
    except ValueError:
        org = (
            await db.execute(select(Organisation).where(Organisation.slug == slug_or_id))
        ).scalar_one_or_none()
        if org is None or org.deleted_at is not None:
            raise NotFound(f"No organisation with the slug or id '{slug_or_id}'.") from None
        return org
    return await get_organisation(db, as_id)


async def _org_key_ids(db: AsyncSession, org: Organisation) -> list[str]:
    statement = scoped(OrganisationScope(org.id), ApiKey).with_only_columns(ApiKey.key_id)
    return list((await db.execute(statement)).scalars())


async def _end_all_access(db: AsyncSession, identity: IdentityContext, org: Organisation) -> None:
    sessions = (await db.execute(scoped(OrganisationScope(org.id), AuthSession))).scalars()
    await end_sessions(db, identity, list(sessions), "organisation_suspended")
    # The keys stay valid in the database (a resumed organisation gets them back); the
    # organisation's status refuses them, and the markers make that immediate.
    identity.authenticator.revoke_api_keys(db, await _org_key_ids(db, org))


async def set_organisation_status(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
    status: str,
) -> Organisation:
    org = await get_organisation(db, org_id)
    before = org.status
    org.status = status
    if status != "active":
        await _end_all_access(db, identity, org)
    elif before != "active":
        # The keys' revoked markers must not outlive the suspension.
        identity.authenticator.forget_api_keys(db, await _org_key_ids(db, org))
    record_event(
        db,
        meta,
        action=f"org.{'suspended' if status != 'active' else 'resumed'}",
        actor=actor,
        org_id=org.id,
        target_kind="organisation",
        target_id=org.id,
        details={"before": before, "after": status},
    )
    return org


async def delete_organisation(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
) -> None:
    org = await get_organisation(db, org_id)
    org.status = "deleted"
    org.deleted_at = datetime.now(UTC)
    await _end_all_access(db, identity, org)
    record_event(
        db,
        meta,
        action="org.deleted",
        actor=actor,
        org_id=org.id,
        target_kind="organisation",
        target_id=org.id,
    )


def check_quota(quota: str, field: str = "scoring_quota") -> str:
    """A quota in `limits` notation ("100/minute;10000/day"), normalised; 422 if not."""
    value = quota.strip()
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if not items or any(item.amount < 1 for item in items):
        raise _invalid(
            field,
            "invalid_quota",
            'not a quota: use limits notation, such as "100/minute;10000/day"',
            f"'{quota}' is not a quota.",
        )
    return value


async def set_scoring_quota(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
    quota: str | None,
) -> Organisation:
    """Set (or, with None, clear) an organisation's scoring quota; a security event.

    This process applies it once the change commits; the others within
    `org_quota_cache_seconds`.
    """
    org = await get_organisation(db, org_id)
    value = check_quota(quota) if quota is not None else None
    before = org.scoring_quota
    org.scoring_quota = value
    record_event(
        db,
        meta,
        action="org.quota_changed",
        actor=actor,
        org_id=org.id,
        target_kind="organisation",
        target_id=org.id,
        details={"before": before, "after": value},
    )
    after_commit(db, identity.quotas.invalidate)
    return org


# --- the organisation's own policy ----------------------------------------------------

POLICY_FIELDS = ("name", "mfa_required", "mfa_required_roles", "min_password_length")


async def _role_names(db: AsyncSession, scope: OrganisationScope) -> set[str]:
    custom = (
        await db.execute(scoped(scope, CustomRole).with_only_columns(CustomRole.name))
    ).scalars()
    return set(BUILTIN_ROLES) | set(custom)


def _mfa_applies(mfa_required: bool, roles: list[str], role: str) -> bool:
    return mfa_required or role in roles


async def update_policy(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> Organisation:
    """Change an organisation's name and MFA and password rules (PATCH semantics).

    An MFA requirement that newly applies to members without MFA moves their sessions in
    this organisation to the enrolment-only scope at once. A minimum password length
    below the default is allowed only while the organisation requires MFA of everyone.
    """
    org = await get_organisation(db, org_id)
    scope = OrganisationScope(org.id)
    settings = identity.settings
    before = {field: getattr(org, field) for field in POLICY_FIELDS}
    after = {**before, **{k: v for k, v in changes.items() if k in POLICY_FIELDS}}
    after["mfa_required_roles"] = sorted(set(after["mfa_required_roles"] or []))
    unknown = sorted(set(after["mfa_required_roles"]) - await _role_names(db, scope))
    if unknown:
        raise _invalid(
            "mfa_required_roles",
            "unknown_role",
            f"no such role: {', '.join(unknown)}",
            "MFA can only be required for roles that exist.",
        )
    length = after["min_password_length"]
    if length is not None:
        if length > MAX_PASSWORD_LENGTH_SETTING:
            raise _invalid(
                "min_password_length",
                "too_long",
                f"at most {MAX_PASSWORD_LENGTH_SETTING}",
            )
        if length < settings.password_min_length and not after["mfa_required"]:
            raise _invalid(
                "min_password_length",
                "needs_mfa_required",
                f"below {settings.password_min_length} only while mfa_required is true",
                "A shorter minimum password length needs MFA required of every member.",
            )
        if length < settings.password_min_length_with_mfa:
            raise _invalid(
                "min_password_length",
                "too_short",
                f"at least {settings.password_min_length_with_mfa}",
            )
    changed = {f: (before[f], after[f]) for f in POLICY_FIELDS if before[f] != after[f]}
    if not changed:
        return org
    affected = await _members_without_mfa_newly_required(db, org, before, after)
    if actor.kind == "user" and actor.id in affected:
        raise Conflict(
            "Enrol MFA yourself before requiring it of a role you hold "
            "(POST /v1/me/mfa/totp), or the change would lock you out of this organisation."
        )
    for field, (_, value) in changed.items():
        setattr(org, field, value)
    if affected:
        await _restrict_to_enrolment(db, identity, scope, affected)
    record_event(
        db,
        meta,
        action="org.updated",
        actor=actor,
        org_id=org.id,
        target_kind="organisation",
        target_id=org.id,
        details={
            "before": {f: old for f, (old, _) in changed.items()},
            "after": {f: new for f, (_, new) in changed.items()},
            "sessions_restricted": len(affected),
        },
    )
    return org


async def _members_without_mfa_newly_required(
    db: AsyncSession, org: Organisation, before: dict[str, Any], after: dict[str, Any]
) -> set[uuid.UUID]:
    rows = await db.execute(
        scoped(OrganisationScope(org.id), Membership)
        .with_only_columns(Membership.user_id, Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(User.totp_confirmed_at.is_(None))
    )
    return {
        user_id
        for user_id, role in rows.all()
        if _mfa_applies(after["mfa_required"], after["mfa_required_roles"], role)
        and not _mfa_applies(before["mfa_required"], before["mfa_required_roles"] or [], role)
    }


async def _restrict_to_enrolment(
    db: AsyncSession, identity: IdentityContext, scope: OrganisationScope, users: set[uuid.UUID]
) -> None:
    sessions = list(
        (
            await db.execute(
                scoped(scope, AuthSession).where(
                    AuthSession.user_id.in_(users),
                    AuthSession.revoked_at.is_(None),
                    AuthSession.scope == FULL_SCOPE,
                )
            )
        ).scalars()
    )
    for session in sessions:
        session.scope = MFA_ENROLMENT_SCOPE
    await db.flush()
    identity.authenticator.forget_sessions(db, [s.id for s in sessions])


# --- members --------------------------------------------------------------------------


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


async def _require_authority_over(
    db: AsyncSession, principal: OrgPrincipal, membership: Membership, what: str
) -> None:
    """Only someone holding every permission of a member's role may act on that member.

    Without this an admin could demote or remove an owner, or any member whose role
    holds more than theirs.
    """
    target = BUILTIN_ROLES.get(membership.role)
    if target is None:
        custom = (
            await db.execute(
                scoped(principal, CustomRole).where(CustomRole.name == membership.role)
            )
        ).scalar_one_or_none()
        target = frozenset(custom.permissions) if custom else frozenset()
    if not target <= principal.permissions:
        raise Forbidden(
            f"You cannot {what} a member whose role ('{membership.role}') has permissions "
            "you do not have."
        )


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
) -> Membership:
    membership = await _membership(db, principal, user_id)
    granted = await permissions_of_role(db, principal, role)
    if not granted <= principal.permissions:
        raise ValidationFailed(
            "You cannot grant a role with permissions you do not have.",
            errors=[{"field": "role", "code": "role_exceeds_yours", "message": "exceeds yours"}],
        )
    await _require_authority_over(db, principal, membership, "change the role of")
    before = membership.role
    if before == OWNER_ROLE and role != OWNER_ROLE and await _owner_count(db, principal) <= 1:
        raise Conflict("The last owner cannot be demoted; make someone else owner first.")
    if before == role:
        return membership
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
        action="member.role_changed",
        actor=principal,
        target_kind="user",
        target_id=user_id,
        details={"before": before, "after": role, "sessions_restricted": restricted},
    )
    return membership


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
    await _require_authority_over(db, principal, membership, "remove")
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
        action="member.removed",
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
    await _require_authority_over(db, principal, membership, "unlock")
    user = await db.get_one(User, user_id)
    if user.is_platform_admin:
        raise Forbidden("A platform administrator is unlocked by an operator: assay admin unlock.")
    before = lock_state(user, datetime.now(UTC))
    clear_locks(user)
    record_unlock(db, meta, user, before, by="org_admin", actor=principal)
    return before


async def add_member(
    db: AsyncSession,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
    user: User,
    role: str,
) -> Membership:
    membership = Membership(org_id=org_id, user_id=user.id, role=role)
    db.add(membership)
    await db.flush()
    record_event(
        db,
        meta,
        action="member.added",
        actor=actor,
        org_id=org_id,
        target_kind="user",
        target_id=user.id,
        details={"before": None, "after": role},
    )
    return membership


# --- custom roles ---------------------------------------------------------------------


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
        action="role.created",
        actor=principal,
        target_kind="role",
        target_id=role.id,
        details={"name": name, "permissions": role.permissions},
    )
    return role


# --- users (CLI and invitations) ------------------------------------------------------


async def create_user(
    db: AsyncSession,
    identity: IdentityContext,
    *,
    email: str,
    password: str,
    display_name: str = "",
    is_platform_admin: bool = False,
    must_change_password: bool = False,
    verified: bool = True,
    check_policy: bool = True,
    extra_context: list[str] | None = None,
) -> User:
    from assay.auth.service import check_new_password

    address = normalise_email(email)
    if (await db.execute(select(User.id).where(User.email == address))).first() is not None:
        raise Conflict("A user with that email exists.")
    user = User(
        email=address,
        display_name=display_name,
        is_platform_admin=is_platform_admin,
        must_change_password=must_change_password,
        email_verified_at=datetime.now(UTC) if verified else None,
    )
    if check_policy:
        await check_new_password(
            db, identity, user, password, field="password", extra_context=extra_context
        )
    user.password_hash = await identity.passwords.hash(password)
    user.password_changed_at = datetime.now(UTC)
    db.add(user)
    await db.flush()
    return user
