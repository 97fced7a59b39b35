"""Password reset, email verification and email change, by emailed links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event, refuse
from assay.auth.deps import IdentityContext
from assay.auth.service import (
    check_new_password,
    confirm_password,
    end_sessions,
    find_user_by_email,
    lock_state,
    normalise_email,
    record_unlock,
    register_success,
    set_password,
    user_sessions,
)
from assay.core.principal import Principal
from assay.email_links import service as email_links
from assay.email_links.errors import InvalidEmailToken
from assay.email_links.models import EmailToken
from assay.email_links.service import EMAIL_CHANGE, RESET, VERIFY, queue_mail

# At most one reset mail per account per minute: asking again sooner is answered the
# same way but sends nothing, so the form cannot be used to flood someone's inbox.
RESET_MAIL_INTERVAL = timedelta(minutes=1)


EMAIL_CHANGE_ANSWER = (
    "A link to confirm the change is on its way to the new address; the account keeps "
    "its current address until it is opened."
)


async def _usable_link(
    db: AsyncSession, meta: RequestMeta, purpose: str, token: str, action: SecurityAction
) -> tuple[EmailToken, User]:
    """The token's row and its user, or a recorded failure and `InvalidEmailToken`."""
    now = datetime.now(UTC)
    record = await email_links.find(db, purpose, token)
    user = await db.get(User, record.user_id) if record and record.user_id else None
    reason = email_links.refusal(record, now)
    if record is not None and reason is None:
        if user is None or user.status != "active":
            reason = "inactive_user"
        elif purpose != EMAIL_CHANGE and user.email != record.email:
            # Sent to an address the account no longer uses: void.
            reason = "email_changed"
    if reason is not None or record is None or user is None:
        refuse(
            db,
            meta,
            InvalidEmailToken(),
            action=action,
            actor_kind="user" if user else None,
            actor_id=user.id if user else None,
            details={"reason": reason},
        )
    return record, user


async def request_password_reset(
    db: AsyncSession, identity: IdentityContext, meta: RequestMeta, email: str
) -> None:
    """Mail a reset link if an active account has this address; silently nothing otherwise."""
    user = await find_user_by_email(db, email)
    if user is None or user.status != "active":
        # The same token work as the other path, so timing does not tell them apart.
        email_links.spend_equal_effort()
        record_event(
            db,
            meta,
            action=SecurityAction.PASSWORD_RESET_REQUESTED,
            outcome="failure",
            actor_id=user.id if user else None,
            actor_kind="user" if user else None,
            details={"reason": "unknown_email" if user is None else user.status},
        )
        return
    if await email_links.issued_recently(db, RESET, user.id, RESET_MAIL_INTERVAL):
        email_links.spend_equal_effort()
        record_event(
            db,
            meta,
            action=SecurityAction.PASSWORD_RESET_REQUESTED,
            outcome="failure",
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "throttled"},
        )
        return
    issued = await email_links.issue(
        db,
        purpose=RESET,
        email=user.email,
        user_id=user.id,
        ttl=timedelta(minutes=identity.settings.password_reset_ttl_minutes),
    )
    record_event(
        db,
        meta,
        action=SecurityAction.PASSWORD_RESET_REQUESTED,
        actor_kind="user",
        actor_id=user.id,
        target_kind="email_token",
        target_id=issued.record.id,
    )
    queue_mail(
        db, identity.mail, email_links.password_reset(identity.settings, user.email, issued.token)
    )


async def reset_password(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    *,
    token: str,
    new_password: str,
) -> None:
    """Set a new password from a reset link; every session ends, MFA stays required."""
    record, user = await _usable_link(db, meta, RESET, token, SecurityAction.PASSWORD_RESET)
    # Policy first: a rejected password leaves the link usable for a better one.
    await check_new_password(db, identity, user, new_password)
    now = datetime.now(UTC)
    if not await email_links.claim(db, record, now):
        raise InvalidEmailToken
    await set_password(db, identity, user, new_password)
    before = lock_state(user, now)
    register_success(user, "password")
    # The password factor's locks end with a reset (proof of the mailbox); a hard lock
    # earned by second-factor failures does not, or a reset would reopen OTP guessing.
    if user.hard_locked and user.otp_failures < identity.settings.lockout_hard_limit:
        user.hard_locked = False
    if (before["hard_locked"] and not user.hard_locked) or before["password_locked"]:
        record_unlock(db, meta, user, before, by="password_reset")
    # The link reached this mailbox, which is what verification proves.
    if user.email_verified_at is None:
        user.email_verified_at = now
    await end_sessions(db, identity, await user_sessions(db, user.id), "password_reset")
    record_event(
        db,
        meta,
        action=SecurityAction.PASSWORD_RESET,
        actor_kind="user",
        actor_id=user.id,
        target_kind="user",
        target_id=user.id,
    )
    queue_mail(db, identity.mail, email_links.password_changed(identity.settings, user.email))


async def verify_email(
    db: AsyncSession, identity: IdentityContext, meta: RequestMeta, token: str
) -> None:
    """Confirm an address: a new account's, or the new address of an email change."""
    if await email_links.find(db, EMAIL_CHANGE, token) is not None:
        await _confirm_email_change(db, identity, meta, token)
        return
    record, user = await _usable_link(db, meta, VERIFY, token, SecurityAction.EMAIL_VERIFIED)
    now = datetime.now(UTC)
    if not await email_links.claim(db, record, now):
        raise InvalidEmailToken
    if user.email_verified_at is None:
        user.email_verified_at = now
    record_event(
        db,
        meta,
        action=SecurityAction.EMAIL_VERIFIED,
        actor_kind="user",
        actor_id=user.id,
        target_kind="user",
        target_id=user.id,
    )


async def request_email_change(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: Principal,
    user: User,
    *,
    password: str,
    new_email: str,
) -> None:
    """Start an email change: needs the password; confirmed by a link to the new address.

    The old address is told at once. An address another account uses gets a notice
    instead of a link, and the caller the same answer, so this finds no accounts.
    """
    await confirm_password(
        db, identity, meta, principal, user, password, action=SecurityAction.EMAIL_CHANGE
    )
    address = normalise_email(new_email)
    if address == user.email:
        return
    taken = await find_user_by_email(db, address)
    if taken is not None:
        email_links.spend_equal_effort()
        queue_mail(db, identity.mail, email_links.email_address_taken(identity.settings, address))
        record_event(
            db,
            meta,
            action=SecurityAction.EMAIL_CHANGE_REQUESTED,
            outcome="failure",
            actor=principal,
            target_kind="user",
            target_id=user.id,
            details={"reason": "address_in_use"},
        )
        return
    issued = await email_links.issue(
        db,
        purpose=EMAIL_CHANGE,
        email=address,
        user_id=user.id,
        ttl=timedelta(hours=identity.settings.email_verification_ttl_hours),
    )
    record_event(
        db,
        meta,
        action=SecurityAction.EMAIL_CHANGE_REQUESTED,
        actor=principal,
        target_kind="user",
        target_id=user.id,
        details={"to": address},
    )
    queue_mail(
        db,
        identity.mail,
        email_links.email_change_confirmation(identity.settings, address, issued.token),
    )
    queue_mail(
        db,
        identity.mail,
        email_links.email_change_requested(identity.settings, user.email, address),
    )


async def _confirm_email_change(
    db: AsyncSession, identity: IdentityContext, meta: RequestMeta, token: str
) -> None:
    record, user = await _usable_link(db, meta, EMAIL_CHANGE, token, SecurityAction.EMAIL_CHANGED)
    now = datetime.now(UTC)
    taken = await find_user_by_email(db, record.email)
    if taken is not None and taken.id != user.id:
        refuse(
            db,
            meta,
            InvalidEmailToken(),
            action=SecurityAction.EMAIL_CHANGED,
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "address_in_use"},
        )
    if not await email_links.claim(db, record, now):
        raise InvalidEmailToken
    old = user.email
    user.email = record.email
    user.email_verified_at = now
    # Links mailed to the old address die with it.
    for purpose in (RESET, VERIFY):
        await email_links.void_pending(db, purpose, user.id)
    record_event(
        db,
        meta,
        action=SecurityAction.EMAIL_CHANGED,
        actor_kind="user",
        actor_id=user.id,
        target_kind="user",
        target_id=user.id,
        details={"before": old, "after": user.email},
    )
    queue_mail(db, identity.mail, email_links.email_changed(identity.settings, old, user.email))
