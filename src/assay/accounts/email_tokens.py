"""Single-use tokens sent by email: issued, looked up by digest, claimed exactly once.

The plaintext (256 bits from the CSPRNG) exists only in the mail; the table keeps its
SHA-256. Issuing a token voids every pending token of the same purpose for the same
person (or, for invitations, the same address in the same organisation), so only the
newest link works.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import EmailToken
from assay.auth.tokens import new_opaque_token
from assay.core.crypto import token_digest
from assay.core.errors import BadRequest

RESET: Final = "reset"
VERIFY: Final = "verify"
INVITE: Final = "invite"
# A new address for an existing account: `email` is the new address.
EMAIL_CHANGE: Final = "email_change"


class InvalidEmailToken(BadRequest):
    """One answer for unknown, expired, used and voided links: probing learns nothing."""

    title = "Invalid or expired link"
    # The failed attempt is recorded as a security event; keep it.
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__(
            "The link is not valid: it may have expired, been used already, or been "
            "replaced by a newer one. Request a new one."
        )


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
