"""Version health: why a version is unhealthy, and how it becomes healthy again.

An unhealthy version answers every prediction with a 503 problem naming its reason.
A version becomes unhealthy when its artifact fails its digest check or is missing,
when its signature no longer verifies (its publisher key was revoked), or when it no
longer loads; an ensemble becomes unhealthy with any version it pins, so a revoked or
tampered component never keeps serving through an ensemble that cached it.

It becomes healthy again only through a verification (`assay models verify`, or
``POST /v1/models/{name}/versions/{v}/verify``) that finds it sound; ensembles that
were unhealthy only because of that component recover with it. Every change is a
security event. The status lives in the version's row, and serving reads it from the
cached alias resolution, so other processes follow within
`model_resolution_cache_seconds`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.errors import NotFound
from assay.core.principal import Principal
from assay.core.tenancy import OrganisationScope, scope_statement, scoped
from assay.engine.errors import ArtifactIntegrityError, UntrustedArtifact
from assay.engine.formats import ArtifactFormat
from assay.engine.integrity import TrustedPublisherKey, verify_signature
from assay.events import service as events
from assay.registry.artifact_store import ArtifactStore
from assay.registry.models import ModelVersion, PublisherKey, RegisteredModel

HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
# Reasons that come from a pinned component start so, and clear when it recovers.
COMPONENT_REASON = "component "
MISSING_ARTIFACT = "artifact integrity check failed: the stored artifact is missing"
DIGEST_MISMATCH = (
    "artifact integrity check failed: the stored artifact no longer matches its pinned SHA-256"
)
_MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Changed:
    """A version whose status a call changed (to evict from caches)."""

    version_id: uuid.UUID
    org_id: uuid.UUID
    model: str


def _reason(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


async def trusted_publisher_keys(db: AsyncSession, org_id: uuid.UUID) -> list[TrustedPublisherKey]:
    rows = await db.execute(
        scoped(OrganisationScope(org_id), PublisherKey).where(PublisherKey.revoked_at.is_(None))
    )
    return [TrustedPublisherKey.from_base64(k.public_key, k.name) for k in rows.scalars()]


def artifact_problem(
    store: ArtifactStore,
    version: ModelVersion,
    trusted: Sequence[TrustedPublisherKey],
    *,
    require_signatures: bool,
) -> str | None:
    """Why the version's artifact must not be served, or None: its digest, then its
    signature against the organisation's trusted keys. Synchronous (reads the file)."""
    digest = version.artifact_digest
    if digest is None:
        return None
    try:
        store.get(digest)
    except NotFound:
        return MISSING_ARTIFACT
    except ArtifactIntegrityError:
        return DIGEST_MISMATCH
    if version.signature is not None:
        try:
            verify_signature(digest, version.signature, trusted)
        except UntrustedArtifact as exc:
            return _reason(f"refused at load: {exc.detail}")
    elif require_signatures or version.artifact_format == ArtifactFormat.PICKLE.value:
        return "refused at load: the artifact is not signed, and it must be"
    return None


async def check_artifact(
    db: AsyncSession, store: ArtifactStore, version: ModelVersion, *, require_signatures: bool
) -> str | None:
    """`artifact_problem` with the version's organisation's trusted keys, off the loop."""
    if version.artifact_digest is None:
        return None
    trusted = await trusted_publisher_keys(db, version.org_id)
    return await anyio.to_thread.run_sync(
        lambda: artifact_problem(store, version, trusted, require_signatures=require_signatures)
    )


async def _ensembles_of(db: AsyncSession, org_id: uuid.UUID) -> list[tuple[ModelVersion, str]]:
    rows = await db.execute(
        scoped(OrganisationScope(org_id), ModelVersion)
        .add_columns(RegisteredModel.name)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.kind == "ensemble")
    )
    return [(version, name) for version, name in rows.all()]


def _pins(version: ModelVersion) -> dict[str, int]:
    pins: dict[str, int] = version.definition.get("pinned_components", {})
    return pins


async def _set_status(
    db: AsyncSession, version: ModelVersion, status: str, reason: str | None
) -> ModelVersion:
    """Write the status through the session's own row (the given one may be detached)."""
    row = (
        await db.execute(
            scoped(OrganisationScope(version.org_id), ModelVersion).where(
                ModelVersion.id == version.id
            )
        )
    ).scalar_one_or_none()
    # The caller's copy (perhaps the one a resolution cache holds) follows at once.
    version.status, version.status_reason = status, reason
    if row is not None and row is not version:
        row.status, row.status_reason = status, reason
    return row or version


def _event(
    db: AsyncSession,
    meta: RequestMeta,
    actor: Principal | None,
    *,
    action: SecurityAction,
    version: ModelVersion,
    model: str,
    details: dict[str, Any],
) -> None:
    record_event(
        db,
        meta,
        action=action,
        outcome="failure" if action != "model.healthy" else "success",
        actor=actor,
        actor_kind=None if actor else "system",
        org_id=version.org_id,
        target_kind="model_version",
        target_id=version.id,
        details={"model": model, "version": version.version, **details},
    )


async def _announce_unhealthy(
    db: AsyncSession, version: ModelVersion, model: str, reason: str
) -> None:
    await events.publish(
        db,
        org_id=version.org_id,
        type="model.unhealthy",
        data={
            "model": model,
            "version": version.version,
            "version_id": str(version.id),
            "reason": reason,
        },
    )


async def mark_unhealthy(
    db: AsyncSession,
    meta: RequestMeta,
    version: ModelVersion,
    model: str,
    *,
    reason: str,
    action: SecurityAction = SecurityAction.MODEL_UNHEALTHY,
    actor: Principal | None = None,
    details: dict[str, Any] | None = None,
) -> list[Changed]:
    """Mark `version` unhealthy with `reason`, and every ensemble that pins it; the caller
    commits. Returns every version changed."""
    reason = _reason(reason)
    await _set_status(db, version, UNHEALTHY, reason)
    _event(
        db,
        meta,
        actor,
        action=action,
        version=version,
        model=model,
        details={"reason": reason, **(details or {})},
    )
    await _announce_unhealthy(db, version, model, reason)
    changed = [Changed(version.id, version.org_id, model)]
    ensembles: list[tuple[ModelVersion, str]] | None = None
    pending = [(model, version.version)]
    while pending:
        name, number = pending.pop()
        if ensembles is None:
            ensembles = await _ensembles_of(db, version.org_id)
        for ensemble, ensemble_name in ensembles:
            if _pins(ensemble).get(name) != number or ensemble.status != HEALTHY:
                continue
            because = _reason(f"{COMPONENT_REASON}'{name}' v{number} is unhealthy")
            ensemble.status, ensemble.status_reason = UNHEALTHY, because
            _event(
                db,
                meta,
                actor,
                action=SecurityAction.MODEL_UNHEALTHY,
                version=ensemble,
                model=ensemble_name,
                details={"reason": because},
            )
            await _announce_unhealthy(db, ensemble, ensemble_name, because)
            changed.append(Changed(ensemble.id, ensemble.org_id, ensemble_name))
            pending.append((ensemble_name, ensemble.version))
    return changed


async def mark_healthy(
    db: AsyncSession,
    meta: RequestMeta,
    version: ModelVersion,
    model: str,
    *,
    actor: Principal | None = None,
    details: dict[str, Any] | None = None,
) -> list[Changed]:
    """Mark a verified `version` healthy again, and the ensembles that were unhealthy only
    because of a component and now have every component healthy; the caller commits."""
    previous = version.status_reason
    await _set_status(db, version, HEALTHY, None)
    _event(
        db,
        meta,
        actor,
        action=SecurityAction.MODEL_HEALTHY,
        version=version,
        model=model,
        details={"previous_reason": previous, **(details or {})},
    )
    changed = [Changed(version.id, version.org_id, model)]
    ensembles = await _ensembles_of(db, version.org_id)
    status: dict[tuple[str, int], str] = {(model, version.version): HEALTHY}
    for ensemble, name in ensembles:
        status[(name, ensemble.version)] = ensemble.status
    pending = [(model, version.version)]
    while pending:
        name, number = pending.pop()
        for ensemble, ensemble_name in ensembles:
            pins = _pins(ensemble)
            if (
                pins.get(name) != number
                or ensemble.status == HEALTHY
                or not (ensemble.status_reason or "").startswith(COMPONENT_REASON)
            ):
                continue
            healthy = [
                await _component_healthy(db, ensemble.org_id, pin, n, status)
                for pin, n in pins.items()
            ]
            if not all(healthy):
                continue
            ensemble.status, ensemble.status_reason = HEALTHY, None
            status[(ensemble_name, ensemble.version)] = HEALTHY
            _event(
                db,
                meta,
                actor,
                action=SecurityAction.MODEL_HEALTHY,
                version=ensemble,
                model=ensemble_name,
                details={"previous_reason": f"{COMPONENT_REASON}'{name}' v{number}"},
            )
            changed.append(Changed(ensemble.id, ensemble.org_id, ensemble_name))
            pending.append((ensemble_name, ensemble.version))
    return changed


async def _component_healthy(
    db: AsyncSession,
    org_id: uuid.UUID,
    name: str,
    number: int,
    known: dict[tuple[str, int], str],
) -> bool:
    if (name, number) not in known:
        statement = (
            select(ModelVersion.status)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(
                RegisteredModel.org_id == org_id,
                RegisteredModel.name == name,
                ModelVersion.version == number,
            )
        )
        row = (
            await db.execute(scope_statement(OrganisationScope(org_id), statement, ModelVersion))
        ).scalar_one_or_none()
        known[(name, number)] = row or UNHEALTHY
    return known[(name, number)] == HEALTHY
