"""Organisations, their policy and quota, members and roles."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from limits import parse_many
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.api_keys.models import ApiKey
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.auth.deps import IdentityContext
from assay.auth.models import AuthSession
from assay.auth.service import end_sessions
from assay.core.after_commit import after_commit
from assay.core.errors import Conflict, NotFound, ValidationFailed
from assay.core.permissions import BUILTIN_ROLES
from assay.core.principal import FULL_SCOPE, MFA_ENROLMENT_SCOPE, Principal
from assay.core.tenancy import OrganisationScope, scoped
from assay.orgs.models import CustomRole, Membership, Organisation
from assay.orgs.quotas import DatabaseQuotaOverrides

_SLUG = re.compile(r"[^a-z0-9]+")


MAX_PASSWORD_LENGTH_SETTING = 128


def slugify(name: str) -> str:
    slug = _SLUG.sub("-", name.lower()).strip("-")[:63]
    return slug or f"org-{secrets.token_hex(4)}"


def _invalid(field: str, code: str, message: str, detail: str | None = None) -> ValidationFailed:
    return ValidationFailed(
        detail or message, errors=[{"field": field, "code": code, "message": message}]
    )


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
        action=SecurityAction.ORG_CREATED,
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
        action=(SecurityAction.ORG_SUSPENDED if status != "active" else SecurityAction.ORG_RESUMED),
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
        action=SecurityAction.ORG_DELETED,
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
    quotas: DatabaseQuotaOverrides | None,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
    quota: str | None,
) -> Organisation:
    """Set (or, with None, clear) an organisation's scoring quota; a security event.

    This process applies it once the change commits (through `quotas`, the copy the
    rate limiter reads); the others, and every process when `quotas` is None (the CLI),
    within `org_quota_cache_seconds`.
    """
    org = await get_organisation(db, org_id)
    value = check_quota(quota) if quota is not None else None
    before = org.scoring_quota
    org.scoring_quota = value
    record_event(
        db,
        meta,
        action=SecurityAction.ORG_QUOTA_CHANGED,
        actor=actor,
        org_id=org.id,
        target_kind="organisation",
        target_id=org.id,
        details={"before": before, "after": value},
    )
    if quotas is not None:
        after_commit(db, quotas.invalidate)
    return org


async def update_organisation(
    db: AsyncSession,
    quotas: DatabaseQuotaOverrides | None,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> Organisation:
    """A platform administrator's change (PATCH semantics): today, the scoring quota."""
    org = await get_organisation(db, org_id)
    if "scoring_quota" in changes:
        org = await set_scoring_quota(db, quotas, meta, actor, org_id, changes["scoring_quota"])
    return org


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
        action=SecurityAction.ORG_UPDATED,
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
        action=SecurityAction.MEMBER_ADDED,
        actor=actor,
        org_id=org_id,
        target_kind="user",
        target_id=user.id,
        details={"before": None, "after": role},
    )
    return membership
