"""Emailed links: single-use tokens issued, looked up by digest and claimed exactly once,
and the messages that carry them (reset, verification, invitation and notices).

The plaintext (256 bits from the CSPRNG) exists only in the mail; the table keeps its
SHA-256. Issuing a token voids every pending token of the same purpose for the same
person (or, for invitations, the same address in the same organisation), so only the
newest link works.

Links point at console pages under `public_url` and carry the token in the fragment
(`#token=...`): browsers never send a fragment to a server, so the token stays out of
access logs, proxies and Referer headers. The console page posts it to the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.after_commit import after_commit
from assay.core.crypto import new_opaque_token, token_digest
from assay.core.mail import Mail, MailDispatcher
from assay.email_links.models import EmailToken
from assay.settings import Settings

# Purposes of a token.
RESET: Final = "reset"
VERIFY: Final = "verify"
INVITE: Final = "invite"
# A new address for an existing account: `email` is the new address.
EMAIL_CHANGE: Final = "email_change"


@dataclass(frozen=True, slots=True)
class IssuedEmailToken:
    token: str
    record: EmailToken


def _same_holder(
    purpose: str, email: str, user_id: uuid.UUID | None, org_id: uuid.UUID | None
) -> ColumnElement[bool]:
    if purpose == INVITE:
        return and_(EmailToken.org_id == org_id, EmailToken.email == email)
    return EmailToken.user_id == user_id


async def issue(
    db: AsyncSession,
    *,
    purpose: str,
    email: str,
    ttl: timedelta,
    user_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    role: str | None = None,
) -> IssuedEmailToken:
    """A new token; every older pending one of the same purpose and holder is voided."""
    now = datetime.now(UTC)
    await db.execute(
        update(EmailToken)
        .where(
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
            _same_holder(purpose, email, user_id, org_id),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    token = new_opaque_token()
    record = EmailToken(
        purpose=purpose,
        token_hash=token_digest(token),
        email=email,
        user_id=user_id,
        org_id=org_id,
        role=role,
        created_at=now,
        expires_at=now + ttl,
    )
    db.add(record)
    await db.flush()
    return IssuedEmailToken(token=token, record=record)


def spend_equal_effort() -> None:
    """The CPU work of `issue`, for the path that must look like it issued a token."""
    token_digest(new_opaque_token())


async def find(db: AsyncSession, purpose: str, token: str) -> EmailToken | None:
    # Equality on the digest of a 256-bit secret: the lookup's timing reveals nothing usable.
    result = await db.execute(
        select(EmailToken).where(
            EmailToken.token_hash == token_digest(token), EmailToken.purpose == purpose
        )
    )
    return result.scalar_one_or_none()


async def holder(db: AsyncSession, purposes: tuple[str, ...], token: str) -> str | None:
    """The address a token was sent to, to charge its per-account rate limit; or None.

    Only the digest is looked up (as `find` does), so this reveals nothing either.
    """
    result = await db.execute(
        select(EmailToken.email).where(
            EmailToken.token_hash == token_digest(token), EmailToken.purpose.in_(purposes)
        )
    )
    return result.scalars().first()


def refusal(record: EmailToken | None, now: datetime) -> str | None:
    """Why the token cannot be used ("unknown", "used", "expired"), or None."""
    if record is None:
        return "unknown"
    if record.used_at is not None:
        return "used"
    if record.expires_at <= now:
        return "expired"
    return None


async def claim(db: AsyncSession, record: EmailToken, now: datetime) -> bool:
    """Mark the token used; False if a concurrent request got there first."""
    # Single use even under a race: only one UPDATE can flip used_at.
    claimed = await db.execute(
        update(EmailToken)
        .where(EmailToken.id == record.id, EmailToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    record.used_at = now
    return True


async def void_pending(db: AsyncSession, purpose: str, user_id: uuid.UUID) -> None:
    """Void a user's pending tokens of one purpose (a password change voids reset links)."""
    await db.execute(
        update(EmailToken)
        .where(
            EmailToken.purpose == purpose,
            EmailToken.user_id == user_id,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


async def issued_recently(
    db: AsyncSession, purpose: str, user_id: uuid.UUID, within: timedelta
) -> bool:
    """Whether a still-pending token of `purpose` was issued to the user within `within`."""
    now = datetime.now(UTC)
    result = await db.execute(
        select(EmailToken.id)
        .where(
            EmailToken.purpose == purpose,
            EmailToken.user_id == user_id,
            EmailToken.used_at.is_(None),
            EmailToken.created_at > now - within,
        )
        .limit(1)
    )
    return result.first() is not None


def queue_mail(db: AsyncSession, dispatcher: MailDispatcher, mail: Mail) -> None:
    """Send `mail` once (and only if) the current transaction commits."""
    after_commit(db, lambda: dispatcher.submit(mail))


# Pages of the web console (assay.console); the old root paths redirect there.
RESET_PASSWORD_PAGE: Final = "/console/reset-password"  # noqa: S105 - a page path
VERIFY_EMAIL_PAGE: Final = "/console/verify-email"
ACCEPT_INVITATION_PAGE: Final = "/console/accept-invitation"
FORGOT_PASSWORD_PAGE: Final = "/console/forgot-password"  # noqa: S105 - a page path
SIGN_IN_PAGE: Final = "/console/sign-in"


_SIGNATURE = "\n-- \nAssay. This message was sent automatically; replies are not read.\n"


def page_url(settings: Settings, page: str, token: str | None = None) -> str:
    base = settings.public_url.rstrip("/") + page
    return f"{base}#token={token}" if token else base


def password_reset(settings: Settings, to: str, token: str) -> Mail:
    minutes = settings.password_reset_ttl_minutes
    return Mail(
        to=to,
        subject="Reset your Assay password",
        text=(
            "Someone asked to reset the password of the Assay account for this address.\n\n"
            f"To choose a new password, open this link within {minutes} minutes:\n\n"
            f"{page_url(settings, RESET_PASSWORD_PAGE, token)}\n\n"
            "The link works once. If you did not ask for it, ignore this message: your "
            "password stays as it is. Resetting the password signs you out everywhere; "
            "two-step verification, if you use it, is still required at sign-in.\n" + _SIGNATURE
        ),
    )


def password_changed(settings: Settings, to: str) -> Mail:
    return Mail(
        to=to,
        subject="Your Assay password was changed",
        text=(
            "The password of the Assay account for this address was just reset, and every "
            "session was signed out.\n\n"
            "If this was not you, reset it again at once and tell your administrator:\n\n"
            f"{page_url(settings, FORGOT_PASSWORD_PAGE)}\n" + _SIGNATURE
        ),
    )


def email_verification(settings: Settings, to: str, token: str) -> Mail:
    hours = settings.email_verification_ttl_hours
    return Mail(
        to=to,
        subject="Confirm your email address for Assay",
        text=(
            "Confirm that this address belongs to you by opening this link within "
            f"{hours} hours:\n\n{page_url(settings, VERIFY_EMAIL_PAGE, token)}\n\n"
            "Until you do, you cannot sign in. If you did not create an Assay account, "
            "ignore this message.\n" + _SIGNATURE
        ),
    )


def signup_for_existing_account(settings: Settings, to: str) -> Mail:
    return Mail(
        to=to,
        subject="Sign-up attempt for your Assay account",
        text=(
            "Someone, perhaps you, tried to create a new Assay account with this address, "
            "but an account for it already exists, so nothing was changed.\n\n"
            f"To sign in: {page_url(settings, SIGN_IN_PAGE)}\n"
            f"Forgot your password? {page_url(settings, FORGOT_PASSWORD_PAGE)}\n" + _SIGNATURE
        ),
    )


def invitation(
    settings: Settings,
    to: str,
    token: str,
    *,
    organisation: str,
    role: str,
    existing_account: bool,
) -> Mail:
    days = settings.invitation_ttl_days
    how = (
        "You already have an Assay account with this address: accept with your current password."
        if existing_account
        else "Accepting creates your Assay account: choose a password on that page."
    )
    return Mail(
        to=to,
        subject=f"You are invited to {organisation} on Assay",
        text=(
            f"You have been invited to join the organisation {organisation!r} on Assay "
            f"with the role {role!r}.\n\n"
            f"To accept, open this link within {days} days:\n\n"
            f"{page_url(settings, ACCEPT_INVITATION_PAGE, token)}\n\n"
            f"{how} The link works once. If you did not expect this invitation, ignore "
            "this message.\n" + _SIGNATURE
        ),
    )


def email_change_confirmation(settings: Settings, to: str, token: str) -> Mail:
    hours = settings.email_verification_ttl_hours
    return Mail(
        to=to,
        subject="Confirm the new email address of your Assay account",
        text=(
            "Someone, presumably you, asked to use this address for their Assay account.\n\n"
            f"To confirm it, open this link within {hours} hours:\n\n"
            f"{page_url(settings, VERIFY_EMAIL_PAGE, token)}\n\n"
            "Until you do, the account keeps its old address. If you did not ask for "
            "this, ignore this message.\n" + _SIGNATURE
        ),
    )


def email_change_requested(settings: Settings, to: str, new_address: str) -> Mail:
    return Mail(
        to=to,
        subject="Your Assay account's email address is being changed",
        text=(
            "Someone signed in to the Assay account for this address asked to change its "
            f"address to {new_address}. It changes once the link sent there is opened.\n\n"
            "If this was not you, your password is known to someone else: reset it now, "
            "which signs out every session and voids the pending change, and tell your "
            f"administrator:\n\n{page_url(settings, FORGOT_PASSWORD_PAGE)}\n" + _SIGNATURE
        ),
    )


def email_changed(settings: Settings, to: str, new_address: str) -> Mail:
    return Mail(
        to=to,
        subject="Your Assay account's email address was changed",
        text=(
            f"The Assay account that used this address now uses {new_address}. This "
            "address no longer signs in to it or receives its mail.\n\n"
            "If this was not you, tell your administrator at once.\n" + _SIGNATURE
        ),
    )


def email_address_taken(settings: Settings, to: str) -> Mail:
    return Mail(
        to=to,
        subject="Email change for Assay not possible",
        text=(
            "Someone asked to use this address for an Assay account, but another account "
            "already uses it, so nothing was changed.\n\n"
            f"To sign in: {page_url(settings, SIGN_IN_PAGE)}\n"
            f"Forgot your password? {page_url(settings, FORGOT_PASSWORD_PAGE)}\n" + _SIGNATURE
        ),
    )
