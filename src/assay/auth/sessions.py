"""Signing in and out: login, MFA step, refresh rotation, sessions, password change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.auth.authority import require_authority_over
from assay.auth.context import IdentityContext
from assay.auth.models import AuthSession, RefreshToken
from assay.core.crypto import new_opaque_token, token_digest
from assay.core.errors import NotFound
from assay.core.principal import (
    FULL_SCOPE,
    MFA_ENROLMENT_SCOPE,
    PASSWORD_CHANGE_SCOPE,
    OrgPrincipal,
    Principal,
)
from assay.core.tenancy import across_tenants, scoped
from assay.orgs.models import Membership, Organisation


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    org_id: uuid.UUID | None
    scope: str


@dataclass(frozen=True, slots=True)
class MfaChallenge:
    challenge: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class OrgChoice:
    """Where a sign-in lands: an active organisation and the role there, or why none."""

    org: Organisation | None
    role: str | None
    # "not_member" (of the organisation asked for), "org_inactive" (every candidate is
    # suspended) or "no_membership"; None when an organisation was found.
    refusal: str | None = None


async def choose_org(
    db: AsyncSession,
    user: User,
    *,
    org_slug: str | None = None,
    org_id: uuid.UUID | None = None,
) -> OrgChoice:
    """The active organisation to sign in to: the one named, else the oldest membership.

    Suspended organisations are skipped, so a user whose first organisation is
    suspended lands in the next active one.
    """
    statement = (
        select(Organisation, Membership.role)
        .join(Membership, Membership.org_id == Organisation.id)
        .where(Membership.user_id == user.id, Organisation.deleted_at.is_(None))
        .order_by(Membership.created_at)
    )
    if org_slug is not None:
        statement = statement.where(Organisation.slug == org_slug)
    if org_id is not None:
        statement = statement.where(Organisation.id == org_id)
    rows = (
        await db.execute(across_tenants(statement, "listing the organisations of a user"))
    ).all()
    for org, role in rows:
        if org.status == "active":
            return OrgChoice(org, role)
    if rows:
        return OrgChoice(None, None, "org_inactive")
    named = org_slug is not None or org_id is not None
    return OrgChoice(None, None, "not_member" if named else "no_membership")


def _mfa_required(user: User, org: Organisation | None, role: str | None) -> bool:
    if user.is_platform_admin:
        return True
    if org is None:
        return False
    return org.mfa_required or (role is not None and role in (org.mfa_required_roles or []))


async def start_session(
    db: AsyncSession,
    identity: IdentityContext,
    user: User,
    org_id: uuid.UUID | None,
    meta: RequestMeta,
    *,
    scope: str = FULL_SCOPE,
    kind: str = "token",
    cookie: str | None = None,
) -> TokenPair:
    now = datetime.now(UTC)
    session = AuthSession(
        user_id=user.id,
        org_id=org_id,
        kind=kind,
        scope=scope,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=identity.settings.refresh_token_ttl_days),
        cookie_hash=token_digest(cookie) if cookie else None,
        user_agent=meta.user_agent or "",
        client_address=meta.client_address,
    )
    db.add(session)
    await db.flush()
    refresh = new_opaque_token()
    db.add(RefreshToken(session_id=session.id, token_hash=token_digest(refresh)))
    access = identity.signer.issue_access(user.id, org_id, session.id)
    return TokenPair(
        access_token=access.token,
        refresh_token=refresh,
        expires_in=access.expires_in,
        session_id=session.id,
        org_id=org_id,
        scope=scope,
    )


async def finish_sign_in(
    db: AsyncSession,
    identity: IdentityContext,
    user: User,
    org: Organisation | None,
    role: str | None,
    meta: RequestMeta,
    *,
    second_factor_done: bool,
    cookie: str | None = None,
) -> TokenPair | MfaChallenge:
    if user.mfa_enabled and not second_factor_done:
        issued = identity.signer.issue_mfa_challenge(user.id, org.id if org else None)
        return MfaChallenge(challenge=issued.token, expires_in=issued.expires_in)
    scope = FULL_SCOPE
    if user.must_change_password:
        scope = PASSWORD_CHANGE_SCOPE
    elif not user.mfa_enabled and _mfa_required(user, org, role):
        scope = MFA_ENROLMENT_SCOPE
    pair = await start_session(
        db,
        identity,
        user,
        org.id if org else None,
        meta,
        scope=scope,
        kind="console" if cookie else "token",
        cookie=cookie,
    )
    record_event(
        db,
        meta,
        action=SecurityAction.LOGIN,
        actor_kind="user",
        actor_id=user.id,
        org_id=org.id if org else None,
        details={"scope": scope, "mfa": second_factor_done},
    )
    return pair


async def end_sessions(
    db: AsyncSession,
    identity: IdentityContext,
    sessions: list[AuthSession],
    reason: str,
) -> None:
    now = datetime.now(UTC)
    ended = []
    for session in sessions:
        if session.revoked_at is None:
            session.revoked_at = now
            session.revoked_reason = reason
            ended.append(session.id)
    await db.flush()
    identity.authenticator.revoke_sessions(db, ended)


async def user_sessions(db: AsyncSession, user_id: uuid.UUID) -> list[AuthSession]:
    now = datetime.now(UTC)
    result = await db.execute(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.created_at.desc())
    )
    return list(result.scalars())


async def end_own_session(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: Principal,
    session_id: uuid.UUID,
) -> None:
    session = await db.get(AuthSession, session_id)
    if session is None or session.user_id != principal.id:
        raise NotFound("No such session.")
    await end_sessions(db, identity, [session], "ended_by_user")
    record_event(
        db,
        meta,
        action=SecurityAction.SESSION_ENDED,
        actor=principal,
        target_kind="session",
        target_id=session_id,
    )


async def end_member_session(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: OrgPrincipal,
    session_id: uuid.UUID,
) -> None:
    session = (
        await db.execute(scoped(principal, AuthSession).where(AuthSession.id == session_id))
    ).scalar_one_or_none()
    if session is None:
        raise NotFound("No such session.")
    await require_authority_over(db, principal, session.user_id, "end a session of")
    await end_sessions(db, identity, [session], "ended_by_admin")
    record_event(
        db,
        meta,
        action=SecurityAction.SESSION_ENDED,
        actor=principal,
        target_kind="session",
        target_id=session_id,
        details={"user": str(session.user_id)},
    )


async def org_sessions(db: AsyncSession, principal: OrgPrincipal) -> list[AuthSession]:
    now = datetime.now(UTC)
    result = await db.execute(
        scoped(principal, AuthSession)
        .where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
        .order_by(AuthSession.created_at.desc())
    )
    return list(result.scalars())
