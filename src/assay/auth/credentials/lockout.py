"""Brute-force protection: per-account, per-factor failure counting and locks.

The counters live on the user row, so every process and every client address sees
the same count; changing address does not reset it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from assay.accounts.models import User
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.principal import Principal
from assay.settings import Settings

Factor = Literal["password", "otp"]
ACCOUNT_LOCKS = Counter(
    "assay_account_locks", "Accounts locked, by factor and kind.", ["factor", "kind"]
)
ACCOUNT_UNLOCKS = Counter(
    "assay_account_unlocks",
    "Locked accounts unlocked, by how: cli (assay admin unlock or reset-password), "
    "org_admin (POST /v1/org/members/{id}/unlock) or password_reset (an emailed link).",
    ["by"],
)


def is_locked(user: User, now: datetime) -> bool:
    if user.hard_locked:
        return True
    return any(
        until is not None and until > now
        for until in (user.password_locked_until, user.otp_locked_until)
    )


async def _add_failure(db: AsyncSession, user: User, factor: Factor) -> int:
    """Add one to the factor's counter in the database; the count including this one.

    The addition happens in SQL, not on the value this request loaded: concurrent failures
    each add one (the UPDATE waits for the row), so none is lost and every failure sees its
    own number. The count is read back in the same transaction (MariaDB has no UPDATE ...
    RETURNING); until commit, this transaction holds the row, so nothing changes it between.
    """
    column = User.password_failures if factor == "password" else User.otp_failures
    await db.execute(
        update(User)
        .where(User.id == user.id)
        .values({column: column + 1})
        .execution_options(synchronize_session=False)
    )
    failures = int((await db.execute(select(column).where(User.id == user.id))).scalar_one())
    # The loaded object learns the new count without marking it changed: a later flush of
    # this user must not write it back.
    set_committed_value(user, column.key, failures)
    return failures


async def register_failure(
    db: AsyncSession, user: User, factor: Factor, settings: Settings, now: datetime
) -> str | None:
    """Count one failure; returns "locked" or "hard_locked" when this failure locks."""
    failures = await _add_failure(db, user, factor)
    if failures >= settings.lockout_hard_limit:
        user.hard_locked = True
        user.last_locked_at = now
        ACCOUNT_LOCKS.labels(factor, "hard").inc()
        return "hard_locked"
    if failures >= settings.lockout_threshold:
        steps = failures - settings.lockout_threshold
        seconds = min(
            settings.lockout_base_seconds * (2 ** min(steps, 20)), settings.lockout_max_seconds
        )
        until = now + timedelta(seconds=seconds)
        if factor == "password":
            user.password_locked_until = until
        else:
            user.otp_locked_until = until
        user.last_locked_at = now
        ACCOUNT_LOCKS.labels(factor, "timed").inc()
        return "locked"
    return None


async def count_failure(
    db: AsyncSession,
    meta: RequestMeta,
    user: User,
    factor: Factor,
    settings: Settings,
    now: datetime,
) -> str | None:
    """`register_failure`, plus the security event when this failure locks the account."""
    locked = await register_failure(db, user, factor, settings, now)
    if locked:
        record_event(
            db,
            meta,
            action=(
                SecurityAction.ACCOUNT_HARD_LOCKED
                if locked == "hard_locked"
                else SecurityAction.ACCOUNT_LOCKED
            ),
            actor_kind="user",
            actor_id=user.id,
            target_kind="user",
            target_id=user.id,
            details={"factor": factor},
        )
    return locked


def register_success(user: User, factor: Factor) -> None:
    if factor == "password":
        user.password_failures = 0
        user.password_locked_until = None
    else:
        user.otp_failures = 0
        user.otp_locked_until = None


def lock_state(user: User, now: datetime) -> dict[str, Any]:
    """What locks an account holds, for the security event of an unlock."""
    return {
        "hard_locked": user.hard_locked,
        "password_locked": user.password_locked_until is not None
        and user.password_locked_until > now,
        "otp_locked": user.otp_locked_until is not None and user.otp_locked_until > now,
        "password_failures": user.password_failures,
        "otp_failures": user.otp_failures,
    }


def unlock(user: User) -> None:
    user.hard_locked = False
    user.password_failures = 0
    user.otp_failures = 0
    user.password_locked_until = None
    user.otp_locked_until = None


def record_unlock(
    db: AsyncSession,
    meta: RequestMeta,
    user: User,
    before: dict[str, Any],
    *,
    by: Literal["cli", "org_admin", "password_reset"],
    actor: Principal | None = None,
) -> None:
    """The security event and metric of an unlock (only when something was locked)."""
    if not (before["hard_locked"] or before["password_locked"] or before["otp_locked"]):
        return
    record_event(
        db,
        meta,
        action=SecurityAction.ACCOUNT_UNLOCKED,
        actor=actor,
        actor_kind=None if actor else "user",
        actor_id=None if actor else user.id,
        target_kind="user",
        target_id=user.id,
        details={"by": by, "before": before},
    )
    ACCOUNT_UNLOCKS.labels(by).inc()
