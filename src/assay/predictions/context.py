"""Everything the scoring feature needs, built once per application."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import select

from assay.core.crypto import Keyring
from assay.core.db import Database
from assay.core.logging import get_logger
from assay.core.tenancy import across_tenants
from assay.predictions.records import PredictionRecorder
from assay.predictions.service import PredictService
from assay.registry.artifact_store import ArtifactStore, FilesystemArtifactStore
from assay.registry.health import Changed
from assay.registry.model_cache import ModelCache
from assay.registry.models import ModelAlias, ModelVersion, RegisteredModel
from assay.settings import Settings

log = get_logger("assay.scoring")


@dataclass
class ScoringContext:
    settings: Settings
    store: ArtifactStore
    cache: ModelCache
    recorder: PredictionRecorder
    predict: PredictService

    @classmethod
    def build(cls, settings: Settings, database: Database, keyring: Keyring) -> ScoringContext:
        store = FilesystemArtifactStore(settings.data_dir / "artifacts")
        cache = ModelCache(settings, store, database.sessionmaker)
        recorder = PredictionRecorder(settings, database.sessionmaker)
        return cls(
            settings=settings,
            store=store,
            cache=cache,
            recorder=recorder,
            predict=PredictService(settings, database.sessionmaker, cache, recorder, keyring),
        )

    async def start(self, settings: Settings, database: Database) -> None:
        self.cache.start()
        self.recorder.start()
        if settings.model_preload:
            await self._preload(database)

    async def stop(self) -> None:
        try:
            await self.recorder.stop()
        finally:
            self.predict.threads.close()

    def forget(self, changed: Iterable[Changed]) -> None:
        """Versions whose status changed: out of the cache, and their models' alias
        resolutions re-read, so the new status applies to the next request here."""
        for item in changed:
            self.cache.evict(item.version_id)
            self.predict.forget(item.org_id, item.model)

    async def _preload(self, database: Database) -> None:
        async with database.sessionmaker() as db:
            rows = await db.execute(
                across_tenants(
                    select(ModelVersion, RegisteredModel.name)
                    .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
                    .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
                    .where(RegisteredModel.deleted_at.is_(None))
                    .distinct(),
                    "preloading every aliased model version at start",
                )
            )
            versions = rows.all()
        for version, name in versions:
            try:
                await self.cache.get(version, name)
            except Exception:  # one bad version must not stop the start
                log.exception("model_preload_failed", model=name, version=version.version)


async def scoring_of(request: Request) -> ScoringContext:
    # Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, and that
    # hop (a thread wake-up per request) cost more than anything else on the predict path.
    context: ScoringContext = request.app.state.scoring
    return context
