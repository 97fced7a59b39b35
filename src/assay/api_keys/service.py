"""API keys: created once, shown once, stored as a keyed hash, revocable at once.

Only a signed-in user creates keys, for their organisation, with no more than their
own permissions; a key never outlives its creator's authority. When the creator
leaves the organisation (or is disabled) every key they created is revoked; when
their role changes, the keys holding a permission the new role lacks are revoked.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.api_keys.models import ApiKey
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.auth.deps import IdentityContext
from assay.auth.service import (
    check_grantable,
    new_api_key,
    require_authority_over,
    signing_secret_aad,
)
from assay.core.crypto import keyed_digest
from assay.core.errors import Forbidden, NotFound, ValidationFailed
from assay.core.principal import OrgPrincipal, Principal
from assay.core.tenancy import across_tenants, scoped


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: ApiKey
    plaintext: str
    # base64url, for keys with signing_required; shown once like the key itself.
    signing_secret: str | None = None


def _validate_cidrs(cidrs: list[str]) -> list[str]:
    normalised = []
    for index, cidr in enumerate(cidrs):
        try:
            normalised.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            raise ValidationFailed(
                f"'{cidr}' is not an address or network.",
                errors=[
                    {
                        "field": f"allowed_cidrs.{index}",
                        "code": "invalid_cidr",
                        "message": "not an IP address or CIDR network",
                    }
                ],
            ) from None
    return normalised


async def create_api_key(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: OrgPrincipal,
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    allowed_cidrs: list[str],
    signing_required: bool,
) -> CreatedKey:
    if principal.kind != "user":
        # A key minting keys would outlive every check on its creator.
        raise Forbidden("Only a signed-in user can create API keys, not another API key.")
    check_grantable(
        principal,
        scopes,
        field="scopes",
        code="scope_not_held",
        detail="A key cannot hold permissions its creator does not have.",
    )
    if expires_at is not None:
        expires_at = expires_at.astimezone(UTC)  # as stored, and as listed later
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ValidationFailed(
            "The expiry is in the past.",
            errors=[{"field": "expires_at", "code": "in_past", "message": "must be in the future"}],
        )
    plaintext, parts = new_api_key()
    key_uuid = uuid.uuid4()
    signing_secret: str | None = None
    signing_secret_encrypted: bytes | None = None
    if signing_required:
        secret = secrets.token_bytes(32)
        signing_secret = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
        signing_secret_encrypted = identity.keyring.encrypt(
            secret, signing_secret_aad(principal.org_id, key_uuid)
        )
    record = ApiKey(
        id=key_uuid,
        org_id=principal.org_id,
        key_id=parts.key_id,
        name=name,
        secret_hash=keyed_digest(identity.authenticator.api_key_pepper, parts.secret),
        scopes=sorted(set(scopes)),
        allowed_cidrs=_validate_cidrs(allowed_cidrs),
        signing_required=signing_required,
        signing_secret_encrypted=signing_secret_encrypted,
        created_by=principal.id,
        expires_at=expires_at,
    )
    db.add(record)
    await db.flush()
    record_event(
        db,
        meta,
        action=SecurityAction.API_KEY_CREATED,
        actor=principal,
        target_kind="api_key",
        target_id=record.id,
        details={"scopes": record.scopes, "name": name},
    )
    return CreatedKey(record=record, plaintext=plaintext, signing_secret=signing_secret)


async def list_api_keys(db: AsyncSession, principal: OrgPrincipal) -> list[ApiKey]:
    result = await db.execute(scoped(principal, ApiKey).order_by(ApiKey.created_at.desc()))
    return list(result.scalars())


async def revoke_api_key(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: OrgPrincipal,
    key_uuid: uuid.UUID,
) -> None:
    record = (
        await db.execute(scoped(principal, ApiKey).where(ApiKey.id == key_uuid))
    ).scalar_one_or_none()
    if record is None:
        raise NotFound("No such API key.")
    await require_authority_over(db, principal, record.created_by, "revoke a key of")
    if record.revoked_at is None:
        await _revoke(db, identity, meta, principal, [record], reason="revoked")


async def _revoke(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    actor: Principal,
    records: list[ApiKey],
    *,
    reason: str,
) -> None:
    if not records:
        return
    now = datetime.now(UTC)
    for record in records:
        record.revoked_at = now
    await db.flush()
    identity.authenticator.revoke_api_keys(db, [r.key_id for r in records])
    for record in records:
        record_event(
            db,
            meta,
            action=SecurityAction.API_KEY_REVOKED,
            actor=actor,
            org_id=record.org_id,
            target_kind="api_key",
            target_id=record.id,
            details={} if reason == "revoked" else {"reason": reason},
        )


async def revoke_keys_of_creator(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    actor: Principal,
    creator_id: uuid.UUID,
    *,
    reason: str,
    still_allowed: frozenset[str] | None = None,
) -> int:
    """Revoke the actor's organisation's live keys created by `creator_id`.

    With `still_allowed` (the creator's new permissions), only the keys holding a scope
    outside it; the others stay within what their creator may still do.
    """
    records = (
        await db.execute(
            scoped(actor, ApiKey).where(
                ApiKey.created_by == creator_id, ApiKey.revoked_at.is_(None)
            )
        )
    ).scalars()
    doomed = [r for r in records if still_allowed is None or not set(r.scopes) <= still_allowed]
    await _revoke(db, identity, meta, actor, doomed, reason=reason)
    return len(doomed)


async def revoke_all_keys_of_user(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    actor: Principal,
    creator_id: uuid.UUID,
    *,
    reason: str,
) -> int:
    """Revoke every live key `creator_id` created, in every organisation (user disabled)."""
    records = list(
        (
            await db.execute(
                across_tenants(
                    select(ApiKey).where(
                        ApiKey.created_by == creator_id, ApiKey.revoked_at.is_(None)
                    ),
                    "revoking the keys of a disabled user",
                )
            )
        ).scalars()
    )
    await _revoke(db, identity, meta, actor, records, reason=reason)
    return len(records)
