"""The rules of model management: one `ModelRegistry` per application, shared by the
API, `assay models`, `assay keys` and `assay demo`.

The registry owns its collaborators: the artifact store, the versions loaded in this
process (`ModelCache`), version registration and checks (`Versions`), the publisher keys
(`PublisherKeys`) and what each committed change must reach (`ModelChanges`). Callers
name models as clients do. A method that reads or changes an organisation's models takes
the session of the caller's transaction and an organisation-bound principal, and leaves
the commit to the caller; caches hear of a change only once it has committed (see
`assay.registry.changes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.errors import Conflict, NotFound
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal
from assay.engine.pack import load_pack
from assay.events import service as events
from assay.registry import manifest as manifests
from assay.registry import repository
from assay.registry.artifact_store import ArtifactStore, FilesystemArtifactStore
from assay.registry.changes import ModelChangeListener, ModelChanges
from assay.registry.health import Changed
from assay.registry.model_cache import ModelCache
from assay.registry.models import ModelAlias, ModelVersion, RegisteredModel
from assay.registry.packs import ImportedModel, manifest_of, read_pack_files
from assay.registry.publisher_keys import PublisherKeys
from assay.registry.schemas import (
    DEFAULT_ALIAS,
    LoadedModelView,
    ModelView,
    VersionRef,
    VersionView,
)
from assay.registry.versions import Versions
from assay.settings import Settings

log = get_logger("assay.registry")


@dataclass(frozen=True, slots=True)
class ServingOverview:
    """Every version of an organisation's models with its health, and those loaded here."""

    versions: list[dict[str, Any]]
    loaded: list[LoadedModelView]


class ModelRegistry:
    """Models, versions, aliases and publisher keys of every organisation."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: ArtifactStore,
        cache: ModelCache,
    ) -> None:
        self.settings = settings
        self.store = store
        # The predict path reads loaded versions from here directly, with no call between.
        self.cache = cache
        self._sessionmaker = sessionmaker
        self._changes = ModelChanges(cache)
        self.versions = Versions(settings, store, cache, self._changes)
        self.keys = PublisherKeys(self._changes)

    @classmethod
    def build(
        cls, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> ModelRegistry:
        store = FilesystemArtifactStore(settings.data_dir / "artifacts")
        return cls(settings, sessionmaker, store, ModelCache(settings, store, sessionmaker))

    def subscribe(self, listener: ModelChangeListener) -> None:
        """Call `listener` after every commit that moved a model's alias, deleted it, or
        changed the health of one of its versions."""
        self._changes.subscribe(listener)

    async def start(self) -> None:
        """At every lifespan start; loads every aliased version when `model_preload`."""
        self.cache.start()
        if self.settings.model_preload:
            await self._preload()

    async def _preload(self) -> None:
        async with self._sessionmaker() as db:
            versions = await repository.aliased_versions_of_every_organisation(db)
        for version, name in versions:
            try:
                await self.cache.get(version, name)
            except Exception:  # one bad version must not stop the start
                log.exception("model_preload_failed", model=name, version=version.version)

    # --- models --------------------------------------------------------------------------

    async def list_models(self, db: AsyncSession, principal: OrgPrincipal) -> list[ModelView]:
        return [
            await self._model_view(db, principal, model, detail=False)
            for model in await repository.list_models(db, principal)
        ]

    async def describe_model(
        self, db: AsyncSession, principal: OrgPrincipal, name: str
    ) -> ModelView:
        """A model with its versions, aliases and the input schema of its default alias."""
        model = await repository.get_model(db, principal, name)
        return await self._model_view(db, principal, model, detail=True)

    async def create_model(
        self,
        db: AsyncSession,
        meta: RequestMeta,
        principal: OrgPrincipal,
        *,
        name: str,
        kind: str,
        description: str,
    ) -> ModelView:
        model = await self._create_model(
            db, meta, principal, name=name, kind=kind, description=description
        )
        return await self._model_view(db, principal, model, detail=True)

    async def _create_model(
        self,
        db: AsyncSession,
        meta: RequestMeta,
        principal: OrgPrincipal,
        *,
        name: str,
        kind: str,
        description: str,
    ) -> RegisteredModel:
        manifests.check_model_name(name)
        if await repository.model_name_used(db, principal, name):
            raise Conflict(f"A model named '{name}' exists (names are never reused).")
        model = RegisteredModel(
            org_id=principal.org_id,
            name=name,
            kind=kind,
            description=description,
            created_by=principal.actor_id,
        )
        db.add(model)
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.MODEL_CREATED,
            actor=principal,
            target_kind="model",
            target_id=model.id,
            details={"name": name, "kind": kind},
        )
        return model

    async def delete_model(
        self, db: AsyncSession, meta: RequestMeta, principal: OrgPrincipal, name: str
    ) -> None:
        """Soft delete (audited); once committed, its versions leave this process's memory."""
        model = await repository.get_model(db, principal, name)
        versions = await repository.versions_of(db, principal, model)
        model.deleted_at = datetime.now(UTC)
        record_event(
            db,
            meta,
            action=SecurityAction.MODEL_DELETED,
            actor=principal,
            target_kind="model",
            target_id=model.id,
            details={"name": model.name},
        )
        # Also tells the listeners of the model (a model without versions has nothing cached).
        self._changes.versions_changed(
            db, [Changed(version.id, principal.org_id, model.name) for version in versions]
        )

    async def _model_view(
        self, db: AsyncSession, principal: OrgPrincipal, model: RegisteredModel, *, detail: bool
    ) -> ModelView:
        aliases = await repository.aliases_of(db, principal, model)
        view = ModelView(
            id=model.id,
            name=model.name,
            kind=model.kind,
            description=model.description,
            created_at=model.created_at,
            aliases=aliases,
        )
        if detail:
            versions = await repository.versions_of(db, principal, model)
            view.versions = [VersionView.of(v) for v in versions]
            shown = next(
                (v for v in versions if v.version == aliases.get(DEFAULT_ALIAS)),
                versions[-1] if versions else None,
            )
            view.input_schema = shown.definition["schema"] if shown else None
        return view

    # --- versions and aliases ------------------------------------------------------------

    async def add_version(
        self,
        db: AsyncSession,
        meta: RequestMeta,
        principal: OrgPrincipal,
        name: str,
        *,
        manifest_text: str,
        artifact: bytes | None,
        signature: str | None,
    ) -> ModelVersion:
        """Check, store, add and load one version from an upload (YAML or JSON manifest):
        a version that registers also loads and scores."""
        model = await repository.get_model(db, principal, name)
        # Reading a large document takes milliseconds: never on the event loop.
        manifest = await anyio.to_thread.run_sync(manifests.parse_manifest, manifest_text)
        registered = await self.versions.register(
            db,
            meta,
            principal,
            model,
            manifest=manifest,
            artifact=artifact,
            signature=signature,
        )
        return registered.version

    async def get_version(
        self, db: AsyncSession, principal: OrgPrincipal, name: str, number: int
    ) -> ModelVersion:
        model = await repository.get_model(db, principal, name)
        return await repository.resolve_version(db, principal, model, VersionRef(version=number))

    async def verify_version(
        self, db: AsyncSession, meta: RequestMeta, principal: OrgPrincipal, name: str, number: int
    ) -> ModelVersion:
        """Check a version completely now and mark it healthy or unhealthy accordingly."""
        model = await repository.get_model(db, principal, name)
        version = await repository.resolve_version(db, principal, model, VersionRef(version=number))
        await self.versions.verify(db, meta, principal, version, model.name)
        return version

    async def move_alias(
        self,
        db: AsyncSession,
        meta: RequestMeta,
        principal: OrgPrincipal,
        name: str,
        alias: str,
        number: int,
    ) -> ModelAlias:
        """Point `alias` at version `number` after verifying and loading it (a 409 if it is
        unhealthy or fails); the move is a security event."""
        model = await repository.get_model(db, principal, name)
        return await self._move_alias(db, meta, principal, model, alias, number)

    async def _move_alias(
        self,
        db: AsyncSession,
        meta: RequestMeta,
        principal: OrgPrincipal,
        model: RegisteredModel,
        alias: str,
        number: int,
    ) -> ModelAlias:
        manifests.check_alias(alias)
        target = await repository.resolve_version(db, principal, model, VersionRef(version=number))
        await self.versions.ensure_servable(db, target, model.name)
        current = await repository.find_alias(db, principal, model, alias)
        before: int | None = None
        if current is None:
            current = ModelAlias(
                org_id=principal.org_id,
                model_id=model.id,
                alias=alias,
                version_id=target.id,
                updated_by=principal.actor_id,
            )
            db.add(current)
        else:
            before = await repository.version_number_of(db, principal, current)
            current.version_id = target.id
            current.updated_by = principal.actor_id
            current.updated_at = datetime.now(UTC)
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.MODEL_ALIAS_MOVED,
            actor=principal,
            target_kind="model",
            target_id=model.id,
            details={"model": model.name, "alias": alias, "before": before, "after": number},
        )
        await events.publish(
            db,
            org_id=principal.org_id,
            type="model.alias_moved",
            data={"model": model.name, "alias": alias, "before": before, "after": number},
        )
        self._changes.model_changed(db, principal.org_id, model.name)
        return current

    # --- packs ---------------------------------------------------------------------------

    async def import_pack(
        self, db: AsyncSession, meta: RequestMeta, principal: OrgPrincipal, directory: Path
    ) -> list[ImportedModel]:
        """Register every model of the pack (components first) and move its aliases, as
        uploads and alias moves do; in the caller's transaction, so a failure part-way
        registers nothing. Idempotent: an unchanged model keeps its version."""
        pack = load_pack(directory)
        files = read_pack_files(pack)
        imported: list[ImportedModel] = []
        for entry in pack.models:
            try:
                model = await repository.get_model(db, principal, entry.name)
            except NotFound:
                model = await self._create_model(
                    db,
                    meta,
                    principal,
                    name=entry.name,
                    kind=entry.spec.kind,
                    description=entry.spec.description or "",
                )
            registered = await self.versions.register(
                db,
                meta,
                principal,
                model,
                manifest=manifest_of(entry),
                artifact=files[entry.name].artifact,
                signature=files[entry.name].signature,
                reuse_identical=True,
            )
            version = registered.version
            current = await repository.aliases_of(db, principal, model)
            for alias in entry.aliases:
                if current.get(alias) != version.version:
                    await self._move_alias(db, meta, principal, model, alias, version.version)
            # Components of later ensembles resolve through these aliases.
            await db.flush()
            imported.append(
                ImportedModel(
                    entry.name,
                    entry.spec.kind,
                    version.version,
                    entry.aliases,
                    version.artifact_digest,
                    registered.created,
                )
            )
        return imported

    # --- serving -------------------------------------------------------------------------

    async def resolve(
        self, db: AsyncSession, principal: OrgPrincipal, name: str, ref: VersionRef
    ) -> tuple[RegisteredModel, ModelVersion]:
        """The model and the version `ref` names inside the principal's organisation."""
        model = await repository.get_model(db, principal, name)
        return model, await repository.resolve_version(db, principal, model, ref)

    async def version_numbers(
        self, db: AsyncSession, principal: OrgPrincipal, model: RegisteredModel
    ) -> list[int]:
        return [v.version for v in await repository.versions_of(db, principal, model)]

    async def serving_overview(self, db: AsyncSession, principal: OrgPrincipal) -> ServingOverview:
        loaded = self.cache.loaded()
        loaded_ids = {entry.version_id for entry in loaded}
        own_ids = set()
        versions: list[dict[str, Any]] = []
        for version, model_name in await repository.versions_with_model_names(db, principal):
            own_ids.add(version.id)
            versions.append(
                {
                    "model": model_name,
                    "version": version.version,
                    "status": version.status,
                    "status_reason": version.status_reason,
                    "content_digest": version.content_digest,
                    "artifact_digest": version.artifact_digest,
                    "loaded": version.id in loaded_ids,
                }
            )
        return ServingOverview(
            versions=versions,
            loaded=[
                LoadedModelView(
                    model=entry.scorer.name or "",
                    version_id=entry.version_id,
                    kind=entry.scorer.kind,
                    content_digest=entry.content_digest,
                )
                for entry in loaded
                if entry.version_id in own_ids
            ],
        )
