"""TOTP second factor and single-use backup codes."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import pyotp
import segno
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User, totp_secret_aad
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.auth.context import IdentityContext
from assay.auth.models import BackupCode
from assay.core.crypto import DecryptionError, ciphertext_key_id, keyed_digest
from assay.core.errors import Conflict, DependencyUnavailable, ValidationFailed
from assay.core.logging import get_logger
from assay.core.principal import Principal

log = get_logger("assay.auth")

ISSUER = "Assay"
BACKUP_CODE_COUNT = 10
# 10 characters from a 32-symbol alphabet: 50 bits each, well above the 20 required.
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_BACKUP_LENGTH = 10


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


def _aad(user: User) -> bytes:
    return totp_secret_aad(user.id)


def _secret_of(identity: IdentityContext, user: User) -> str | None:
    if user.totp_secret_encrypted is None:
        return None
    try:
        return identity.keyring.decrypt(user.totp_secret_encrypted, _aad(user)).decode()
    except DecryptionError as exc:
        # A key this process does not hold (or a damaged value): the server's problem,
        # said plainly, never a 500 (ADR 0024).
        log.warning(
            "totp_secret_unreadable",
            user_id=str(user.id),
            key_id=ciphertext_key_id(user.totp_secret_encrypted),
            error=str(exc),
        )
        raise DependencyUnavailable(
            "The second factor cannot be checked now: its secret cannot be opened with the "
            "encryption keys this server holds. The operator has been told."
        ) from None


def _backup_digest(identity: IdentityContext, code: str) -> str:
    return keyed_digest(identity.authenticator.api_key_pepper, "backup:" + code)


def _normalise_backup(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


async def begin_enrolment(
    db: AsyncSession, identity: IdentityContext, principal: Principal
) -> Enrolment:
    user = await db.get(User, principal.id)
    assert user is not None  # noqa: S101
    if user.mfa_enabled:
        raise Conflict("MFA is already enabled; disable it first to enrol a new device.")
    secret = pyotp.random_base32(length=32)  # 160 bits from the CSPRNG
    user.totp_secret_encrypted = identity.keyring.encrypt(secret.encode(), _aad(user))
    user.totp_last_timecode = None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=svg)


def _matching_timecode(secret: str, code: str, last: int | None, now: datetime) -> int | None:
    """The timecode (±1 step) the code belongs to, if it was never used before."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for timecode in (current - 1, current, current + 1):
        if last is not None and timecode <= last:
            continue  # each code, and anything older than the last accepted, only once
        expected = totp.generate_otp(timecode)
        if hmac.compare_digest(expected, code):
            return timecode
    return None


async def confirm_enrolment(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: Principal,
    code: str,
) -> list[str]:
    user = await db.get(User, principal.id)
    assert user is not None  # noqa: S101
    secret = _secret_of(identity, user)
    if secret is None or user.mfa_enabled:
        raise Conflict("Start an enrolment first.")
    timecode = _matching_timecode(secret, code.strip(), user.totp_last_timecode, datetime.now(UTC))
    if timecode is None:
        raise ValidationFailed(
            "The code does not match; check the device clock and try again.",
            errors=[{"field": "code", "code": "invalid_code", "message": "does not match"}],
        )
    user.totp_last_timecode = timecode
    user.totp_confirmed_at = datetime.now(UTC)
    codes = await regenerate_backup_codes(db, identity, user)
    record_event(
        db,
        meta,
        action=SecurityAction.MFA_ENROLLED,
        actor=principal,
        target_kind="user",
        target_id=user.id,
    )
    return codes


async def regenerate_backup_codes(
    db: AsyncSession, identity: IdentityContext, user: User
) -> list[str]:
    await db.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    codes = [
        "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(_BACKUP_LENGTH))
        for _ in range(BACKUP_CODE_COUNT)
    ]
    for code in codes:
        db.add(BackupCode(user_id=user.id, code_hash=_backup_digest(identity, code)))
    return [f"{c[:5]}-{c[5:]}" for c in codes]


async def disable(
    db: AsyncSession, identity: IdentityContext, meta: RequestMeta, principal: Principal, user: User
) -> None:
    user.totp_secret_encrypted = None
    user.totp_confirmed_at = None
    user.totp_last_timecode = None
    await db.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    record_event(
        db,
        meta,
        action=SecurityAction.MFA_DISABLED,
        actor=principal,
        target_kind="user",
        target_id=user.id,
    )


async def verify_second_factor(
    db: AsyncSession, identity: IdentityContext, user: User, code: str, now: datetime
) -> Literal["totp", "backup_code"] | None:
    secret = _secret_of(identity, user)
    if secret is None:
        return None
    timecode = _matching_timecode(secret, code.strip(), user.totp_last_timecode, now)
    if timecode is not None:
        user.totp_last_timecode = timecode
        return "totp"
    normalised = _normalise_backup(code)
    if len(normalised) != _BACKUP_LENGTH:
        return None
    digest = _backup_digest(identity, normalised)
    used = await db.execute(
        update(BackupCode)
        .where(
            BackupCode.user_id == user.id,
            BackupCode.code_hash == digest,
            BackupCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return "backup_code" if used.rowcount == 1 else None  # type: ignore[attr-defined]


async def remaining_backup_codes(db: AsyncSession, user: User) -> int:
    rows = await db.execute(
        select(BackupCode.id).where(BackupCode.user_id == user.id, BackupCode.used_at.is_(None))
    )
    return len(rows.all())
