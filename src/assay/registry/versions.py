"""Model versions: registering one, and checking one now.

Registering always takes the same steps: validate everything (`manifest`), verify any
signature against the organisation's trusted keys, store the artifact
content-addressed, add the row, and load it (the same load every later use does), so a
version that registers also loads and scores. A version is checked again before an
alias moves to it, when someone asks (`verify`), and with every stored artifact at once
(`assay models verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.errors import Conflict, ValidationFailed
from assay.core.principal import OrgPrincipal, Principal
from assay.engine.errors import (
    ArtifactIntegrityError,
    InvalidArtifact,
    InvalidModelDefinition,
    UntrustedArtifact,
)
from assay.events import service as events
from assay.registry import manifest as manifests
from assay.registry import repository
from assay.registry.artifact_store import ArtifactStore
from assay.registry.changes import ModelChanges
from assay.registry.errors import ModelUnavailable
from assay.registry.health import (
    DIGEST_MISMATCH,
    HEALTHY,
    MISSING_ARTIFACT,
    check_artifact,
    mark_healthy,
    mark_unhealthy,
    trusted_publisher_keys,
)
from assay.registry.model_cache import ModelCache, unhealthy_error
from assay.registry.models import ModelVersion, RegisteredModel
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


@dataclass(frozen=True, slots=True)
class ArtifactCheck:
    """What checking one stored artifact found (`problem` None: sound)."""

    model: str
    version: int
    artifact_digest: str | None
    problem: str | None
    healthy_again: bool = False


class Versions:
    """Registering and checking versions, with the artifact store and loaded versions."""

    def __init__(
        self, settings: Settings, store: ArtifactStore, cache: ModelCache, changes: ModelChanges
    ) -> None:
        self._settings = settings
        self._store = store
        self._cache = cache
        self._changes = changes

    async def register(
        self,
        db: AsyncSession,
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
        prepared = await manifests.prepare_version(
            db,
            principal,
            model,
            manifest=manifest,
            artifact=artifact,
            signature=signature,
            trusted=await trusted_publisher_keys(db, principal.org_id),
            require_signatures=self._settings.require_model_signatures,
            allow_pickle=self._settings.allow_pickle_models,
        )
        if reuse_identical:
            existing = await repository.find_identical(
                db, principal, model, prepared.content_digest
            )
            if existing is not None and existing.status == HEALTHY:
                await self._load_for_registration(existing, model.name, db)
                return Registered(existing, created=False)
        version = await self._add_version_row(db, meta, principal, model, prepared)
        await self._load_for_registration(version, model.name, db)
        return Registered(version, created=True)

    async def _add_version_row(
        self,
        db: AsyncSession,
        meta: RequestMeta,
        principal: OrgPrincipal,
        model: RegisteredModel,
        prepared: manifests.PreparedVersion,
    ) -> ModelVersion:
        """Store the artifact content-addressed, pin its digest, and add the version row."""
        if prepared.artifact is not None:
            stored = await anyio.to_thread.run_sync(self._store.put, prepared.artifact)
            if stored != prepared.artifact_digest:
                raise ArtifactIntegrityError("The artifact changed while it was being stored.")
        number = await repository.next_version_number(db, principal, model)
        version = ModelVersion(
            org_id=principal.org_id,
            model_id=model.id,
            version=number,
            definition=prepared.definition,
            artifact_digest=prepared.artifact_digest,
            artifact_size=len(prepared.artifact) if prepared.artifact is not None else None,
            artifact_format=prepared.artifact_format,
            signature=prepared.signature,
            signer_fingerprint=prepared.signer_fingerprint,
            content_digest=prepared.content_digest,
            status=HEALTHY,
            created_by=principal.actor_id,
        )
        db.add(version)
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.MODEL_VERSION_CREATED,
            actor=principal,
            target_kind="model_version",
            target_id=version.id,
            details={
                "model": model.name,
                "version": number,
                "digest": prepared.artifact_digest,
                "signed_by": prepared.signer_fingerprint,
            },
        )
        await events.publish(
            db,
            org_id=principal.org_id,
            type="model.version_created",
            data={
                "model": model.name,
                "version": number,
                "version_id": str(version.id),
                "digest": prepared.artifact_digest,
            },
        )
        return version

    async def _load_for_registration(
        self, version: ModelVersion, model_name: str, db: AsyncSession
    ) -> None:
        try:
            await self._cache.load_now(version, model_name, db)
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

    async def verify(
        self,
        db: AsyncSession,
        meta: RequestMeta,
        principal: OrgPrincipal,
        version: ModelVersion,
        model_name: str,
    ) -> None:
        """Check the version completely now (digest, signature, load). Sound: it is healthy
        again (with the ensembles that failed only through it). Not: it is unhealthy with
        the reason."""
        problem = await check_artifact(
            db, self._store, version, require_signatures=self._settings.require_model_signatures
        )
        if problem is None:
            try:
                await self._cache.load_now(version, model_name, db)
            except ModelUnavailable as exc:
                problem = str(exc.extra.get("reason") or exc.detail)
            except _LOAD_ERRORS as exc:
                problem = f"failed to load: {exc.detail}"
        if problem is None:
            if version.status != HEALTHY:
                changed = await mark_healthy(
                    db, meta, version, model_name, actor=principal, details={"verified": True}
                )
                self._changes.versions_changed(db, changed)
            return
        changed = await mark_unhealthy(
            db,
            meta,
            version,
            model_name,
            reason=problem,
            action=SecurityAction.MODEL_VERIFICATION_FAILED,
            actor=principal,
        )
        self._changes.versions_changed(db, changed)

    async def verify_stored_artifacts(
        self, db: AsyncSession, meta: RequestMeta, actor: Principal
    ) -> list[ArtifactCheck]:
        """Check every stored artifact of every organisation now (digest, signature): a
        failing version is marked unhealthy, an unhealthy one that passes healthy again."""
        checks: list[ArtifactCheck] = []
        for version, name in await repository.artifact_versions_of_every_organisation(db):
            problem = await check_artifact(
                db, self._store, version, require_signatures=self._settings.require_model_signatures
            )
            restored = False
            if problem is not None:
                if version.status == HEALTHY or version.status_reason != problem:
                    changed = await mark_unhealthy(
                        db,
                        meta,
                        version,
                        name,
                        reason=problem,
                        action=SecurityAction.MODEL_VERIFICATION_FAILED,
                        actor=actor,
                    )
                    self._changes.versions_changed(db, changed)
            elif version.status != HEALTHY:
                changed = await mark_healthy(db, meta, version, name, actor=actor)
                self._changes.versions_changed(db, changed)
                restored = True
            checks.append(
                ArtifactCheck(name, version.version, version.artifact_digest, problem, restored)
            )
        return checks

    async def ensure_servable(
        self, db: AsyncSession, version: ModelVersion, model_name: str
    ) -> None:
        """Refuse (409) a version that is unhealthy, or whose artifact fails its digest or
        signature check now (it is then marked unhealthy), or that does not load."""
        if version.status != HEALTHY:
            raise _not_servable(unhealthy_error(version, model_name).detail)
        problem = await check_artifact(
            db, self._store, version, require_signatures=self._settings.require_model_signatures
        )
        if problem is not None:
            kind = "integrity" if problem in (DIGEST_MISMATCH, MISSING_ARTIFACT) else "untrusted"
            await self._cache.report_failure(version, model_name, problem, kind=kind)
            raise _not_servable(unhealthy_error(version, model_name).detail)
        try:
            await self._cache.get(version, model_name)
        except ModelUnavailable as exc:
            raise _not_servable(exc.detail) from None


def _not_servable(detail: str) -> Conflict:
    return Conflict(f"{detail} An alias can only point at a healthy version that loads.")
