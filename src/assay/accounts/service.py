"""The rules of user accounts: creating users, the signed-in user's own profile, MFA
enrolment and its removal, and re-authentication before sensitive changes.

Password reset, email verification and email change are in `email_flows`; the checks
on credentials themselves (policy, lockout, TOTP) belong to auth and are used here
through `assay.auth.service`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.auth import service as auth
from assay.auth.deps import IdentityContext
from assay.auth.errors import MfaRequired
from assay.auth.models import AuthSession
from assay.core.errors import Conflict, Forbidden, ValidationFailed
from assay.core.principal import MFA_ENROLMENT_SCOPE, Principal


def user_actor(user: User) -> Principal:
    """The user acting on their own account, for security events, before any session."""
    return Principal(kind="user", id=user.id, org_id=None, permissions=frozenset())


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
    """A new user with a password that passed the policy (unless `check_policy` is off,
    for one-time generated passwords that must be changed at first sign-in)."""
    address = auth.normalise_email(email)
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
        await auth.check_new_password(
            db, identity, user, password, field="password", extra_context=extra_context
        )
    user.password_hash = await identity.passwords.hash(password)
    user.password_changed_at = datetime.now(UTC)
    db.add(user)
    await db.flush()
    return user


async def signed_in_user(db: AsyncSession, principal: Principal) -> User:
    """The user behind a principal; API keys and the CLI have no account here."""
    if principal.kind != "user":
        raise Forbidden("This route is for signed-in users, not API keys.")
    return await db.get_one(User, principal.id)


async def update_profile(db: AsyncSession, principal: Principal, *, display_name: str) -> User:
    user = await signed_in_user(db, principal)
    user.display_name = display_name
    return user


async def confirm_mfa_enrolment(
    db: AsyncSession, identity: IdentityContext, meta: RequestMeta, principal: Principal, code: str
) -> list[str]:
    """Turn TOTP on with its first code; returns the backup codes. A session restricted
    to enrolment has then done its job and ends: the client signs in again with MFA."""
    await signed_in_user(db, principal)
    codes = await auth.confirm_mfa_enrolment(db, identity, meta, principal, code)
    if principal.scope == MFA_ENROLMENT_SCOPE and principal.session_id is not None:
        session = await db.get_one(AuthSession, principal.session_id)
        await auth.end_sessions(db, identity, [session], "mfa_enrolled")
    return codes


async def check_mfa_removable(db: AsyncSession, user: User) -> None:
    """Refuse (409) to turn MFA off for someone who must keep it."""
    required = await auth.mfa_requirement(db, user)
    if required is not None:
        raise MfaRequired(required)


async def disable_mfa(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: Principal,
    user: User,
    password: str,
) -> None:
    """Turn MFA off, once the password is confirmed (counted like a sign-in)."""
    await check_mfa_removable(db, user)
    await auth.confirm_password(db, identity, meta, principal, user, password)
    await auth.disable_mfa(db, identity, meta, principal, user)


async def regenerate_backup_codes(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: Principal,
    user: User,
    password: str,
) -> list[str]:
    """New backup codes (the old ones stop working), once the password is confirmed."""
    await auth.confirm_password(db, identity, meta, principal, user, password)
    if not user.mfa_enabled:
        raise ValidationFailed("Enable MFA first.")
    codes = await auth.regenerate_backup_codes(db, identity, user)
    record_event(db, meta, action=SecurityAction.MFA_BACKUP_CODES_REGENERATED, actor=principal)
    return codes
