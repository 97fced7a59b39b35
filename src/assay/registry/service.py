"""The rules of model management, shared by the API, `assay models` and `assay demo`.

Registering a version always goes through `register_version`: validate everything,
verify any signature against the organisation's trusted keys, store the artifact
content-addressed, add the row, and load it (the same load every later use does), so a
version that registers also loads and scores. An alias only ever points at a version
that is healthy and passes its integrity and signature checks at the moment of the
move. Revoking a publisher key makes every version it signed unhealthy at once.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.service import RequestMeta, record_event
from assay.core.errors import Conflict, NotFound, ValidationFailed
from assay.core.principal import OrgPrincipal, Principal
from assay.core.tenancy import OrganisationScope, scoped
from assay.engine.errors import (
    ArtifactIntegrityError,
    InvalidArtifact,
    InvalidModelDefinition,
    UntrustedArtifact,
)
from assay.engine.integrity import TrustedPublisherKey
from assay.registry import repository as registry
from assay.registry.artifact_store import ArtifactStore
from assay.registry.errors import ModelUnavailable
from assay.registry.health import (
    DIGEST_MISMATCH,
    HEALTHY,
    MISSING_ARTIFACT,
    Changed,
    check_artifact,
    mark_healthy,
    mark_unhealthy,
    trusted_publisher_keys,
)
from assay.registry.model_cache import ModelCache, unhealthy_error
from assay.registry.models import ModelAlias, ModelVersion, PublisherKey, RegisteredModel
from assay.settings import Settings

_LOAD_ERRORS = (
    ArtifactIntegrityError,
    InvalidArtifact,
    InvalidModelDefinition,
    UntrustedArtifact,
)


@dataclass(frozen=True, slots=True)
class Registered:
    version: ModelVersion
    created: bool  # False when an identical version already existed and was reused


async def register_version(
    db: AsyncSession,
    store: ArtifactStore,
    cache: ModelCache,
    settings: Settings,
    meta: RequestMeta,
    principal: OrgPrincipal,
    model: RegisteredModel,
    *,
    manifest: dict[str, Any],
    artifact: bytes | None,
    signature: str | bytes | None,
    reuse_identical: bool = False,
) -> Registered:
    """Check, store, add and load one version; any failure leaves nothing registered
    (the caller's transaction rolls back). With `reuse_identical`, a healthy version
    with exactly this content is returned instead of a new one."""
    trusted = await trusted_publisher_keys(db, principal.org_id)
    prepared = await registry.prepare_version(
        db,
        principal,
        model,
        manifest=manifest,
        artifact=artifact,
        signature=signature,
        trusted=trusted,
        require_signatures=settings.require_model_signatures,
        allow_pickle=settings.allow_pickle_models,
    )
    if reuse_identical:
        existing = await registry.find_identical(db, principal, model, prepared)
        if existing is not None and existing.status == HEALTHY:
            await _load_for_registration(cache, existing, model.name, db)
            return Registered(existing, created=False)
    version = await registry.create_version(db, store, meta, principal, model, prepared)
    await _load_for_registration(cache, version, model.name, db)
    return Registered(version, created=True)


async def _load_for_registration(
    cache: ModelCache, version: ModelVersion, model_name: str, db: AsyncSession
) -> None:
    try:
        await cache.load_now(version, model_name, db)
    except ModelUnavailable as exc:
        # Only a component can be unavailable here: a definition problem of this version.
        raise ValidationFailed(
            f"The ensemble cannot be registered: {exc.detail}",
            errors=[
                {
                    "field": "spec.components",
                    "code": "component_unavailable",
                    "message": str(exc.extra.get("component", "")),
                }
            ],
        ) from None


async def move_alias(
    db: AsyncSession,
    store: ArtifactStore,
    cache: ModelCache,
    settings: Settings,
    meta: RequestMeta,
    principal: OrgPrincipal,
    model: RegisteredModel,
    alias: str,
    number: int,
) -> ModelAlias:
    """Point `alias` at version `number` after verifying and loading it (a 409 if it is
    unhealthy or fails); the move is a security event."""
    registry.check_alias(alias)
    target = await registry.resolve_version(
        db, principal, model, registry.VersionRef(version=number)
    )
    await ensure_servable(db, store, cache, settings, target, model.name)
    return await registry.set_alias(db, meta, principal, model, alias, number)


async def ensure_servable(
    db: AsyncSession,
    store: ArtifactStore,
    cache: ModelCache,
    settings: Settings,
    version: ModelVersion,
    model_name: str,
) -> None:
    """Refuse (409) a version that is unhealthy, or whose artifact fails its digest or
    signature check now (it is then marked unhealthy), or that does not load."""
    if version.status != HEALTHY:
        raise _not_servable(unhealthy_error(version, model_name).detail)
    problem = await check_artifact(
        db, store, version, require_signatures=settings.require_model_signatures
    )
    if problem is not None:
        kind = "integrity" if problem in (DIGEST_MISMATCH, MISSING_ARTIFACT) else "untrusted"
        await cache.report_failure(version, model_name, problem, kind=kind)
        raise _not_servable(unhealthy_error(version, model_name).detail)
    try:
        await cache.get(version, model_name)
    except ModelUnavailable as exc:
        raise _not_servable(exc.detail) from None


def _not_servable(detail: str) -> Conflict:
    return Conflict(f"{detail} An alias can only point at a healthy version that loads.")


async def verify_version(
    db: AsyncSession,
    store: ArtifactStore,
    cache: ModelCache,
    settings: Settings,
    meta: RequestMeta,
    principal: OrgPrincipal,
    version: ModelVersion,
    model_name: str,
) -> list[Changed]:
    """Check the version completely now (digest, signature, load). Sound: it is healthy
    again (with the ensembles that failed only through it). Not: it is unhealthy with the
    reason. Returns the versions whose status changed."""
    problem = await check_artifact(
        db, store, version, require_signatures=settings.require_model_signatures
    )
    if problem is None:
        try:
            await cache.load_now(version, model_name, db)
        except ModelUnavailable as exc:
            problem = str(exc.extra.get("reason") or exc.detail)
        except _LOAD_ERRORS as exc:
            problem = f"failed to load: {exc.detail}"
    if problem is None:
        if version.status == HEALTHY:
            return []
        return await mark_healthy(
            db, meta, version, model_name, actor=principal, details={"verified": True}
        )
    changed = await mark_unhealthy(
        db,
        meta,
        version,
        model_name,
        reason=problem,
        action="model.verification_failed",
        actor=principal,
    )
    cache.evict_changed(changed)
    return changed


async def delete_model(
    db: AsyncSession,
    cache: ModelCache,
    meta: RequestMeta,
    principal: OrgPrincipal,
    model: RegisteredModel,
) -> None:
    """Soft delete (audited); its loaded versions leave this process's memory at once."""
    versions = await registry.versions_of(db, principal, model)
    await registry.delete_model(db, meta, principal, model)
    for version in versions:
        cache.evict(version.id)


# --- trusted publisher keys --------------------------------------------------------------


async def trust_key(
    db: AsyncSession,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
    *,
    name: str,
    public_key: str,
) -> PublisherKey:
    """Trust a publisher's Ed25519 key; a revoked key may be trusted again."""
    trusted = TrustedPublisherKey.from_base64(public_key, name)
    existing = (
        await db.execute(
            scoped(OrganisationScope(org_id), PublisherKey).where(
                PublisherKey.fingerprint == trusted.key_id
            )
        )
    ).scalar_one_or_none()
    if existing is not None and existing.revoked_at is None:
        raise Conflict(f"Key {trusted.key_id} is already trusted here (as '{existing.name}').")
    if existing is not None:
        existing.revoked_at = None
        existing.name = name
        key = existing
    else:
        key = PublisherKey(
            org_id=org_id,
            name=name,
            public_key=base64.b64encode(base64.b64decode(public_key.strip())).decode(),
            fingerprint=trusted.key_id,
        )
        db.add(key)
    await db.flush()
    record_event(
        db,
        meta,
        action="publisher_key.trusted",
        actor=actor,
        org_id=org_id,
        target_kind="publisher_key",
        target_id=trusted.key_id,
        details={"name": name, "again": existing is not None},
    )
    return key


async def revoke_key(
    db: AsyncSession,
    meta: RequestMeta,
    actor: Principal,
    org_id: uuid.UUID,
    fingerprint: str,
) -> list[Changed]:
    """Stop trusting a key: every healthy version it signed (and the ensembles pinning
    them) becomes unhealthy now. Returns the versions changed, for cache eviction."""
    scope = OrganisationScope(org_id)
    key = (
        await db.execute(scoped(scope, PublisherKey).where(PublisherKey.fingerprint == fingerprint))
    ).scalar_one_or_none()
    if key is None:
        raise NotFound("No such publisher key.")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        record_event(
            db,
            meta,
            action="publisher_key.revoked",
            actor=actor,
            org_id=org_id,
            target_kind="publisher_key",
            target_id=fingerprint,
        )
    signed = await db.execute(
        scoped(scope, ModelVersion)
        .add_columns(RegisteredModel.name)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(ModelVersion.signer_fingerprint == fingerprint, ModelVersion.status == HEALTHY)
    )
    changed: list[Changed] = []
    for version, model_name in signed.all():
        if version.status != HEALTHY:  # already marked through an earlier one's ensemble
            continue
        changed.extend(
            await mark_unhealthy(
                db,
                meta,
                version,
                model_name,
                reason=f"refused at load: its publisher key {fingerprint} was revoked",
                action="model.unhealthy",
                actor=actor,
                details={"publisher_key": fingerprint},
            )
        )
    return changed
