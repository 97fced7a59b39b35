"""Signing in and out: login, MFA step, refresh rotation, sessions, password change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import PasswordHistory, User
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event, refuse
from assay.auth.context import IdentityContext
from assay.auth.credentials.lockout import count_failure, is_locked, register_success
from assay.auth.errors import IncorrectPassword
from assay.auth.passwords import PasswordPolicyError, PasswordViolation, password_violations
from assay.core.principal import (
    Principal,
)
from assay.core.tenancy import across_tenants
from assay.email_links import service as email_links
from assay.email_links.service import VERIFY, queue_mail
from assay.orgs.models import Membership, Organisation


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def find_user_by_email(db: AsyncSession, email: str) -> User | None:
    result = await db.execute(select(User).where(User.email == normalise_email(email)))
    return result.scalar_one_or_none()


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
    # Whatever changed it (the user, a reset link, an operator), pending reset links die,
    # and so does a pending email change (it may be an intruder's).
    await email_links.void_pending(db, email_links.RESET, user.id)
    await email_links.void_pending(db, email_links.EMAIL_CHANGE, user.id)
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
    action: SecurityAction = SecurityAction.REAUTHENTICATION,
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
        refuse(
            db,
            meta,
            IncorrectPassword(field),
            action=action,
            actor=principal,
            details={"reason": "locked" if user.status == "active" else user.status},
        )
    if not password_ok:
        await count_failure(db, meta, user, "password", identity.settings, now)
        refuse(
            db,
            meta,
            IncorrectPassword(field),
            action=action,
            actor=principal,
            details={"reason": "password", "failures": user.password_failures},
        )
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


# A sign-in attempt by an unverified user sends a fresh link, at most this often.
VERIFICATION_MAIL_INTERVAL = timedelta(minutes=5)


async def send_verification(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    user: User,
    *,
    throttle: bool,
) -> bool:
    """Mail a verification link; with `throttle`, not if one went out recently."""
    if throttle and await email_links.issued_recently(
        db, VERIFY, user.id, VERIFICATION_MAIL_INTERVAL
    ):
        return False
    issued = await email_links.issue(
        db,
        purpose=VERIFY,
        email=user.email,
        user_id=user.id,
        ttl=timedelta(hours=identity.settings.email_verification_ttl_hours),
    )
    record_event(
        db,
        meta,
        action=SecurityAction.EMAIL_VERIFICATION_SENT,
        actor_kind="user",
        actor_id=user.id,
        target_kind="email_token",
        target_id=issued.record.id,
    )
    queue_mail(
        db,
        identity.mail,
        email_links.email_verification(identity.settings, user.email, issued.token),
    )
    return True
