"""Signing in and out: login, MFA step, refresh rotation, sessions, password change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts import email_tokens
from assay.accounts.models import User
from assay.audit.service import RequestMeta, record_event
from assay.auth import mfa
from assay.auth.context import IdentityContext
from assay.auth.lockout import count_failure, is_locked, register_success
from assay.auth.models import AuthSession, RefreshToken
from assay.auth.passwords import PasswordPolicyError, password_violations
from assay.auth.tokens import MFA_CHALLENGE, InvalidToken, new_opaque_token
from assay.core.crypto import token_digest
from assay.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from assay.core.principal import (
    FULL_SCOPE,
    MFA_ENROLMENT_SCOPE,
    PASSWORD_CHANGE_SCOPE,
    OrgPrincipal,
    Principal,
)
from assay.core.tenancy import across_tenants, scoped
from assay.orgs.models import Membership, Organisation


class InvalidCredentials(InvalidToken):
    """One answer for unknown email, wrong password, locked or disabled account."""

    title = "Invalid credentials"
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class InvalidSecondFactor(InvalidToken):
    title = "Invalid credentials"
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__("The code is incorrect, or the sign-in attempt has expired.")


class EmailNotVerified(Forbidden):
    """The password was right, but the account's address was never confirmed."""

    title = "Email address not verified"
    # The sign-in evidence and the fresh verification link must survive the refusal.
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__(
            "Confirm your email address first: open the link in the verification email "
            "we sent you (a sign-in attempt sends a new one, at most every 5 minutes), "
            "then sign in again."
        )


class IncorrectPassword(ValidationFailed):
    """The password given to confirm a sensitive change is wrong (or the account locked).

    The failure is counted like a sign-in failure and recorded, so the writes are kept.
    """

    keeps_writes = True

    def __init__(self, field: str = "password") -> None:
        super().__init__(
            "The password is incorrect.",
            errors=[{"field": field, "code": "incorrect", "message": "incorrect"}],
        )


class MfaRequired(Conflict):
    def __init__(self, why: str) -> None:
        super().__init__(f"Two-step verification cannot be turned off: {why}.")


class RefreshTokenReused(InvalidToken):
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__("The refresh token is no longer valid; sign in again.")


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


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def find_user_by_email(db: AsyncSession, email: str) -> User | None:
    result = await db.execute(select(User).where(User.email == normalise_email(email)))
    return result.scalar_one_or_none()


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


async def _finish_sign_in(
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
        action="login",
        actor_kind="user",
        actor_id=user.id,
        org_id=org.id if org else None,
        details={"scope": scope, "mfa": second_factor_done},
    )
    return pair


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
        record_event(db, meta, action="login", outcome="failure", details={"reason": "unknown"})
        raise InvalidCredentials
    if is_locked(user, now) or user.status != "active":
        record_event(
            db,
            meta,
            action="login",
            outcome="failure",
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "locked" if user.status == "active" else user.status},
        )
        raise InvalidCredentials
    if not password_ok:
        await count_failure(db, meta, user, "password", identity.settings, now)
        record_event(
            db,
            meta,
            action="login",
            outcome="failure",
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "password", "failures": user.password_failures},
        )
        raise InvalidCredentials
    register_success(user, "password")
    if user.password_hash and identity.passwords.needs_rehash(user.password_hash):
        user.password_hash = await identity.passwords.hash(password)
    if user.email_verified_at is None:
        # Only self-signed-up accounts start unverified; the right password proves it
        # is the owner asking, so telling them (and re-sending the link) leaks nothing.
        from assay.accounts.service import send_verification  # imports this module

        await send_verification(db, identity, meta, user, throttle=True)
        record_event(
            db,
            meta,
            action="login",
            outcome="failure",
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "email_unverified"},
        )
        raise EmailNotVerified
    choice = await choose_org(db, user, org_slug=org_slug)
    # A platform administrator may act in no organisation, but only when none was asked
    # for: an unknown or suspended one is refused, never silently dropped.
    if choice.org is None and (org_slug is not None or not user.is_platform_admin):
        record_event(
            db,
            meta,
            action="login",
            outcome="failure",
            actor_kind="user",
            actor_id=user.id,
            details={"reason": choice.refusal},
        )
        raise InvalidCredentials
    return await _finish_sign_in(
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
        record_event(
            db,
            meta,
            action="mfa.verify",
            outcome="failure",
            actor_kind="user",
            actor_id=user.id,
            details={"reason": void},
        )
        raise InvalidSecondFactor
    # The organisation the password step chose, still active and still a member: never
    # another one in its place.
    choice = OrgChoice(None, None)
    if claims.get("org"):
        choice = await choose_org(db, user, org_id=uuid.UUID(claims["org"]))
        if choice.org is None:
            record_event(
                db,
                meta,
                action="mfa.verify",
                outcome="failure",
                actor_kind="user",
                actor_id=user.id,
                details={"reason": choice.refusal},
            )
            raise InvalidSecondFactor
    method = await mfa.verify_second_factor(db, identity, user, code, now)
    if method is None:
        await count_failure(db, meta, user, "otp", identity.settings, now)
        record_event(
            db,
            meta,
            action="mfa.verify",
            outcome="failure",
            actor_kind="user",
            actor_id=user.id,
            details={"failures": user.otp_failures},
        )
        raise InvalidSecondFactor
    register_success(user, "otp")
    user.last_mfa_at = now
    if method == "backup_code":
        record_event(db, meta, action="mfa.backup_code_used", actor_kind="user", actor_id=user.id)
    result = await _finish_sign_in(
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
        record_event(
            db,
            meta,
            action="refresh_token.reuse",
            outcome="failure",
            actor_kind="user",
            actor_id=session.user_id,
            org_id=session.org_id,
            target_kind="session",
            target_id=session.id,
        )
        raise RefreshTokenReused
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
        action="logout",
        actor=principal,
        target_kind="session",
        target_id=principal.session_id,
    )


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
        action="session.ended",
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
    await end_sessions(db, identity, [session], "ended_by_admin")
    record_event(
        db,
        meta,
        action="session.ended",
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


async def context_words(db: AsyncSession, user: User) -> list[str]:
    names = (
        await db.execute(
            across_tenants(
                select(Organisation.name, Organisation.slug)
                .join(Membership, Membership.org_id == Organisation.id)
                .where(Membership.user_id == user.id),
                "password context words",
            )
        )
    ).all()
    words = [user.email, user.display_name]
    for name, slug in names:
        words.extend([name, slug])
    return words


async def check_new_password(
    db: AsyncSession,
    identity: IdentityContext,
    user: User,
    password: str,
    *,
    field: str = "new_password",
    extra_context: list[str] | None = None,
) -> None:
    """Policy and reuse checks; raises a 422 naming every rule that failed."""
    settings = identity.settings
    violations = password_violations(
        password,
        min_length=await _min_length(db, identity, user),
        context=[*(await context_words(db, user)), *(extra_context or [])],
        min_strength=settings.password_min_strength,
    )
    if not violations and settings.password_history_size > 0:
        from assay.accounts.models import PasswordHistory
        from assay.auth.passwords import PasswordViolation

        history = (
            await db.execute(
                select(PasswordHistory.password_hash)
                .where(PasswordHistory.user_id == user.id)
                .order_by(PasswordHistory.created_at.desc())
                .limit(settings.password_history_size)
            )
        ).scalars()
        previous = list(history)
        if user.password_hash:
            previous.insert(0, user.password_hash)
        for old_hash in previous[: settings.password_history_size]:
            if await identity.passwords.verify(old_hash, password):
                violations.append(
                    PasswordViolation(
                        "reused_password",
                        f"do not reuse any of your last {settings.password_history_size} passwords",
                    )
                )
                break
    if violations:
        raise PasswordPolicyError(violations, field=field)


async def _min_length(db: AsyncSession, identity: IdentityContext, user: User) -> int:
    """The strictest minimum among the server's and the user's organisations'.

    An organisation may raise the minimum for its members; it may lower it (down to
    `password_min_length_with_mfa`) only while it requires MFA of everyone, and the
    lower value applies only to users who have MFA.
    """
    settings = identity.settings
    base = settings.password_min_length
    rows = (
        await db.execute(
            across_tenants(
                select(Organisation.min_password_length, Organisation.mfa_required)
                .join(Membership, Membership.org_id == Organisation.id)
                .where(Membership.user_id == user.id, Organisation.deleted_at.is_(None)),
                "password length of the user's organisations",
            )
        )
    ).all()
    required = [base]
    for length, enforced in rows:
        if length is None:
            continue
        if length >= base:
            required.append(length)
        elif enforced and user.mfa_enabled:
            required.append(max(length, settings.password_min_length_with_mfa))
    lowered_everywhere = bool(rows) and all(
        length is not None and length < base and enforced and user.mfa_enabled
        for length, enforced in rows
    )
    if lowered_everywhere:
        required.remove(base)
    return max(required)


async def set_password(
    db: AsyncSession, identity: IdentityContext, user: User, password: str
) -> None:
    from assay.accounts.models import PasswordHistory

    # Whatever changed it (the user, a reset link, an operator), pending reset links die,
    # and so does a pending email change (it may be an intruder's).
    await email_tokens.void_pending(db, email_tokens.RESET, user.id)
    await email_tokens.void_pending(db, email_tokens.EMAIL_CHANGE, user.id)
    if user.password_hash:
        db.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    user.password_hash = await identity.passwords.hash(password)
    user.password_changed_at = datetime.now(UTC)
    user.must_change_password = False


async def confirm_password(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: Principal,
    user: User,
    password: str,
    *,
    field: str = "password",
    action: str = "reauthentication",
) -> None:
    """Check a signed-in user's password before a sensitive change.

    Counted and locked exactly like a sign-in (the same per-account failure counter),
    so a stolen session is no unthrottled password oracle; a locked account gets the
    same answer as a wrong password. The route adds the per-address and per-account
    rate limits.
    """
    now = datetime.now(UTC)
    # The hash runs on every path, so a locked account answers as fast as a wrong password.
    password_ok = await identity.passwords.verify(user.password_hash, password)
    if is_locked(user, now) or user.status != "active":
        record_event(
            db,
            meta,
            action=action,
            outcome="failure",
            actor=principal,
            details={"reason": "locked" if user.status == "active" else user.status},
        )
        raise IncorrectPassword(field)
    if not password_ok:
        await count_failure(db, meta, user, "password", identity.settings, now)
        record_event(
            db,
            meta,
            action=action,
            outcome="failure",
            actor=principal,
            details={"reason": "password", "failures": user.password_failures},
        )
        raise IncorrectPassword(field)
    register_success(user, "password")


async def mfa_requirement(db: AsyncSession, user: User) -> str | None:
    """Why this user must keep MFA (platform administrator, an organisation's rule), or None."""
    if user.is_platform_admin:
        return "platform administrators must always use it"
    rows = (
        await db.execute(
            across_tenants(
                select(
                    Organisation.name, Organisation.mfa_required, Organisation.mfa_required_roles
                )
                .add_columns(Membership.role)
                .join(Membership, Membership.org_id == Organisation.id)
                .where(Membership.user_id == user.id, Organisation.deleted_at.is_(None))
                .order_by(Organisation.name),
                "the MFA rules of the user's organisations",
            )
        )
    ).all()
    for name, required, roles, role in rows:
        if required or role in (roles or []):
            return f"the organisation {name!r} requires it"
    return None


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
        action="password.change",
    )
    await check_new_password(db, identity, user, new_password)
    was_forced = principal.scope == PASSWORD_CHANGE_SCOPE
    await set_password(db, identity, user, new_password)
    # Every other session ends; this one continues (or is replaced, if it was restricted).
    others = [s for s in await user_sessions(db, user.id) if s.id != principal.session_id]
    await end_sessions(db, identity, others, "password_changed")
    record_event(
        db, meta, action="password.changed", actor=principal, target_kind="user", target_id=user.id
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
    result = await _finish_sign_in(
        db, identity, user, choice.org, choice.role, meta, second_factor_done=True, cookie=cookie
    )
    assert isinstance(result, TokenPair)  # noqa: S101
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
    record_event(db, meta, action="org.switched", actor=principal, org_id=org.id)
    return pair
