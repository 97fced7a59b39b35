"""Trusted publisher keys: an organisation trusts a publisher's Ed25519 key, so versions
signed with it register and load; revoking it makes every version it signed (and the
ensembles pinning them) unhealthy at once."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.errors import Conflict, NotFound
from assay.core.principal import OrgPrincipal
from assay.engine.integrity import TrustedPublisherKey
from assay.registry import repository
from assay.registry.changes import ModelChanges
from assay.registry.health import HEALTHY, Changed, mark_unhealthy
from assay.registry.models import PublisherKey


class PublisherKeys:
    """The publisher keys of an organisation, for the API and `assay keys`."""

    def __init__(self, changes: ModelChanges) -> None:
        self._changes = changes

    async def list_keys(self, db: AsyncSession, principal: OrgPrincipal) -> list[PublisherKey]:
        return await repository.list_publisher_keys(db, principal)

    async def trust_key(
        self,
        db: AsyncSession,
        meta: RequestMeta,
        principal: OrgPrincipal,
        *,
        name: str,
        public_key: str,
    ) -> PublisherKey:
        """Trust a publisher's Ed25519 key; a revoked key may be trusted again."""
        trusted = TrustedPublisherKey.from_base64(public_key, name)
        existing = await repository.find_publisher_key(db, principal, trusted.key_id)
        if existing is not None and existing.revoked_at is None:
            raise Conflict(f"Key {trusted.key_id} is already trusted here (as '{existing.name}').")
        if existing is not None:
            existing.revoked_at = None
            existing.name = name
            key = existing
        else:
            key = PublisherKey(
                org_id=principal.org_id,
                name=name,
                public_key=base64.b64encode(base64.b64decode(public_key.strip())).decode(),
                fingerprint=trusted.key_id,
            )
            db.add(key)
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.PUBLISHER_KEY_TRUSTED,
            actor=principal,
            target_kind="publisher_key",
            target_id=trusted.key_id,
            details={"name": name, "again": existing is not None},
        )
        return key

    async def revoke_key(
        self, db: AsyncSession, meta: RequestMeta, principal: OrgPrincipal, fingerprint: str
    ) -> list[Changed]:
        """Stop trusting a key: every healthy version it signed (and the ensembles pinning
        them) becomes unhealthy now. Returns the versions changed."""
        key = await repository.find_publisher_key(db, principal, fingerprint)
        if key is None:
            raise NotFound("No such publisher key.")
        if key.revoked_at is None:
            key.revoked_at = datetime.now(UTC)
            record_event(
                db,
                meta,
                action=SecurityAction.PUBLISHER_KEY_REVOKED,
                actor=principal,
                target_kind="publisher_key",
                target_id=fingerprint,
            )
        changed: list[Changed] = []
        for version, model_name in await repository.healthy_versions_signed_by(
            db, principal, fingerprint
        ):
            if version.status != HEALTHY:  # already marked through an earlier one's ensemble
                continue
            changed.extend(
                await mark_unhealthy(
                    db,
                    meta,
                    version,
                    model_name,
                    reason=f"refused at load: its publisher key {fingerprint} was revoked",
                    action=SecurityAction.MODEL_UNHEALTHY,
                    actor=principal,
                    details={"publisher_key": fingerprint},
                )
            )
        self._changes.versions_changed(db, changed)
        return changed
