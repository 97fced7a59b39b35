"""Signing in and out: login, MFA step, refresh rotation, sessions, password change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event, refuse
from assay.auth.context import IdentityContext
from assay.auth.credentials import mfa
from assay.auth.credentials.lockout import count_failure, is_locked, register_success
from assay.auth.credentials.users import (
    check_new_password,
    confirm_password,
    find_user_by_email,
    send_verification,
    set_password,
)
from assay.auth.errors import (
    EmailNotVerified,
    InvalidCredentials,
    InvalidSecondFactor,
    RefreshTokenReused,
)
from assay.auth.models import AuthSession, RefreshToken
from assay.auth.sessions import (
    MfaChallenge,
    OrgChoice,
    TokenPair,
    _mfa_required,
    choose_org,
    end_sessions,
    finish_sign_in,
    start_session,
    user_sessions,
)
from assay.auth.tokens import MFA_CHALLENGE, InvalidToken
from assay.core.crypto import new_opaque_token, token_digest
from assay.core.errors import Forbidden, NotFound
from assay.core.principal import (
    FULL_SCOPE,
    MFA_ENROLMENT_SCOPE,
    PASSWORD_CHANGE_SCOPE,
    Principal,
)


async def login(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    *,
    email: str,
    password: str,
    org_slug: str | None,
    cookie: str | None = None,
) -> TokenPair | MfaChallenge:
    """Check the password; then tokens, a console session (with `cookie`), or a challenge."""
    now = datetime.now(UTC)
    user = await find_user_by_email(db, email)
    # The hash runs whether or not the user exists, so timing reveals nothing.
    password_ok = await identity.passwords.verify(user.password_hash if user else None, password)
    if user is None:
        refuse(
            db,
            meta,
            InvalidCredentials(),
            action=SecurityAction.LOGIN,
            details={"reason": "unknown"},
        )
    if is_locked(user, now) or user.status != "active":
        refuse(
            db,
            meta,
            InvalidCredentials(),
            action=SecurityAction.LOGIN,
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "locked" if user.status == "active" else user.status},
        )
    if not password_ok:
        await count_failure(db, meta, user, "password", identity.settings, now)
        refuse(
            db,
            meta,
            InvalidCredentials(),
            action=SecurityAction.LOGIN,
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "password", "failures": user.password_failures},
        )
    register_success(user, "password")
    if user.password_hash and identity.passwords.needs_rehash(user.password_hash):
        user.password_hash = await identity.passwords.hash(password)
    if user.email_verified_at is None:
        # Only self-signed-up accounts start unverified; the right password proves it
        # is the owner asking, so telling them (and re-sending the link) leaks nothing.
        await send_verification(db, identity, meta, user, throttle=True)
        refuse(
            db,
            meta,
            EmailNotVerified(),
            action=SecurityAction.LOGIN,
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "email_unverified"},
        )
    choice = await choose_org(db, user, org_slug=org_slug)
    # A platform administrator may act in no organisation, but only when none was asked
    # for: an unknown or suspended one is refused, never silently dropped.
    if choice.org is None and (org_slug is not None or not user.is_platform_admin):
        refuse(
            db,
            meta,
            InvalidCredentials(),
            action=SecurityAction.LOGIN,
            actor_kind="user",
            actor_id=user.id,
            details={"reason": choice.refusal},
        )
    return await finish_sign_in(
        db, identity, user, choice.org, choice.role, meta, second_factor_done=False, cookie=cookie
    )


def _challenge_void(user: User, issued_at: float) -> str | None:
    """Why a challenge issued at `issued_at` (epoch seconds) no longer counts, or None.

    A lock, a password change or a completed second factor after the challenge was
    issued voids it: each challenge completes at most once, and none outlives the
    password it proved.
    """
    for reason, when in (
        ("locked", user.last_locked_at),
        ("password_changed", user.password_changed_at),
        ("challenge_used", user.last_mfa_at),
    ):
        if when is not None and when.timestamp() >= issued_at:
            return reason
    return None


async def complete_mfa(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    *,
    challenge: str,
    code: str,
    cookie: str | None = None,
) -> TokenPair:
    now = datetime.now(UTC)
    try:
        claims = identity.signer.decode(challenge, MFA_CHALLENGE)
    except InvalidToken:
        raise InvalidSecondFactor from None
    user = await db.get(User, uuid.UUID(claims["sub"]))
    if user is None or user.status != "active" or not user.mfa_enabled:
        raise InvalidSecondFactor
    issued_at = float(claims.get("at", claims["iat"]))
    void = "locked" if is_locked(user, now) else _challenge_void(user, issued_at)
    if void is not None:
        refuse(
            db,
            meta,
            InvalidSecondFactor(),
            action=SecurityAction.MFA_VERIFY,
            actor_kind="user",
            actor_id=user.id,
            details={"reason": void},
        )
    # The organisation the password step chose, still active and still a member: never
    # another one in its place.
    choice = OrgChoice(None, None)
    if claims.get("org"):
        choice = await choose_org(db, user, org_id=uuid.UUID(claims["org"]))
        if choice.org is None:
            refuse(
                db,
                meta,
                InvalidSecondFactor(),
                action=SecurityAction.MFA_VERIFY,
                actor_kind="user",
                actor_id=user.id,
                details={"reason": choice.refusal},
            )
    method = await mfa.verify_second_factor(db, identity, user, code, now)
    if method is None:
        await count_failure(db, meta, user, "otp", identity.settings, now)
        refuse(
            db,
            meta,
            InvalidSecondFactor(),
            action=SecurityAction.MFA_VERIFY,
            actor_kind="user",
            actor_id=user.id,
            details={"failures": user.otp_failures},
        )
    register_success(user, "otp")
    user.last_mfa_at = now
    if method == "backup_code":
        record_event(
            db,
            meta,
            action=SecurityAction.MFA_BACKUP_CODE_USED,
            actor_kind="user",
            actor_id=user.id,
        )
    result = await finish_sign_in(
        db, identity, user, choice.org, choice.role, meta, second_factor_done=True, cookie=cookie
    )
    assert isinstance(result, TokenPair)  # noqa: S101 - second factor already done
    return result


async def refresh(
    db: AsyncSession, identity: IdentityContext, meta: RequestMeta, refresh_token: str
) -> TokenPair:
    now = datetime.now(UTC)
    digest = token_digest(refresh_token)
    row = (
        await db.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == digest)
        )
    ).one_or_none()
    if row is None:
        raise InvalidToken("The refresh token is not valid.")
    token, session = row
    if token.used_at is not None:
        # A rotated token came back: someone holds a copy. End the whole family.
        if session.revoked_at is None:
            session.revoked_at = now
            session.revoked_reason = "refresh_token_reuse"
            identity.authenticator.revoke_sessions(db, [session.id])
        refuse(
            db,
            meta,
            RefreshTokenReused(),
            action=SecurityAction.REFRESH_TOKEN_REUSE,
            actor_kind="user",
            actor_id=session.user_id,
            org_id=session.org_id,
            target_kind="session",
            target_id=session.id,
        )
    idle = timedelta(minutes=identity.settings.session_idle_timeout_minutes)
    if (
        session.revoked_at is not None
        or session.expires_at <= now
        or session.last_seen_at + idle <= now
    ):
        raise InvalidToken("The session has ended; sign in again.")
    user = await db.get(User, session.user_id)
    if user is None or user.status != "active":
        raise InvalidToken("The session has ended; sign in again.")
    # Single use even under a race: only one UPDATE can flip used_at.
    claimed = await db.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidToken("The refresh token is no longer valid.")
    session.last_seen_at = now
    new_refresh = new_opaque_token()
    db.add(RefreshToken(session_id=session.id, token_hash=token_digest(new_refresh)))
    access = identity.signer.issue_access(session.user_id, session.org_id, session.id)
    return TokenPair(
        access_token=access.token,
        refresh_token=new_refresh,
        expires_in=access.expires_in,
        session_id=session.id,
        org_id=session.org_id,
        scope=session.scope,
    )


async def change_password(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: Principal,
    *,
    current_password: str,
    new_password: str,
    cookie: str | None = None,
) -> TokenPair | None:
    """Change the password; ends every other session.

    From a restricted (forced change) session, that session ends too and a new one
    starts: a console one, with a new id, when `cookie` is given.
    """
    user = await db.get(User, principal.id)
    if user is None or principal.kind != "user":
        raise Forbidden("Only users have passwords.")
    await confirm_password(
        db,
        identity,
        meta,
        principal,
        user,
        current_password,
        field="current_password",
        action=SecurityAction.PASSWORD_CHANGE,
    )
    await check_new_password(db, identity, user, new_password)
    was_forced = principal.scope == PASSWORD_CHANGE_SCOPE
    await set_password(db, identity, user, new_password)
    # Every other session ends; this one continues (or is replaced, if it was restricted).
    others = [s for s in await user_sessions(db, user.id) if s.id != principal.session_id]
    await end_sessions(db, identity, others, "password_changed")
    record_event(
        db,
        meta,
        action=SecurityAction.PASSWORD_CHANGED,
        actor=principal,
        target_kind="user",
        target_id=user.id,
    )
    if not was_forced:
        return None
    current = await db.get(AuthSession, principal.session_id) if principal.session_id else None
    if current is not None:
        await end_sessions(db, identity, [current], "password_changed")
    choice = OrgChoice(None, None)
    if principal.org_id is not None:
        choice = await choose_org(db, user, org_id=principal.org_id)
        if choice.org is None:
            raise Forbidden("The organisation of this session is no longer active.")
    result = await finish_sign_in(
        db, identity, user, choice.org, choice.role, meta, second_factor_done=True, cookie=cookie
    )
    assert isinstance(result, TokenPair)  # noqa: S101 - second factor already done
    return result


async def switch_org(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: Principal,
    org_slug: str,
    *,
    cookie: str | None = None,
) -> TokenPair:
    """End this session and start one in another organisation (a console one with `cookie`)."""
    if principal.kind != "user" or principal.session_id is None:
        raise Forbidden("Only a signed-in user can switch organisation.")
    user = await db.get(User, principal.id)
    assert user is not None  # noqa: S101 - the principal was just authenticated
    choice = await choose_org(db, user, org_slug=org_slug)
    if choice.org is None:
        raise NotFound("You are not a member of an active organisation with that name.")
    org, role = choice.org, choice.role
    current = await db.get(AuthSession, principal.session_id)
    if current is not None:
        await end_sessions(db, identity, [current], "switched_organisation")
    scope = FULL_SCOPE
    if not user.mfa_enabled and _mfa_required(user, org, role):
        scope = MFA_ENROLMENT_SCOPE
    pair = await start_session(
        db,
        identity,
        user,
        org.id,
        meta,
        scope=scope,
        kind="console" if cookie else "token",
        cookie=cookie,
    )
    record_event(db, meta, action=SecurityAction.ORG_SWITCHED, actor=principal, org_id=org.id)
    return pair


async def logout(
    db: AsyncSession, identity: IdentityContext, meta: RequestMeta, principal: Principal
) -> None:
    if principal.session_id is None:
        raise Forbidden("Only a signed-in user can sign out.")
    session = await db.get(AuthSession, principal.session_id)
    if session is not None:
        await end_sessions(db, identity, [session], "logout")
    record_event(
        db,
        meta,
        action=SecurityAction.LOGOUT,
        actor=principal,
        target_kind="session",
        target_id=principal.session_id,
    )


def challenge_subject(identity: IdentityContext, challenge: str) -> str | None:
    """The account an MFA challenge names, to charge its per-account budget; None for a
    forged or expired one (refused by `complete_mfa`; it names no account to charge)."""
    try:
        subject: str = identity.signer.decode(challenge, MFA_CHALLENGE)["sub"]
    except InvalidToken:
        return None
    return subject
