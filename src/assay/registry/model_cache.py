"""Loaded model versions, kept in memory and verified every time they are loaded.

Every load (first use, preload at start, reload after eviction, in every worker)
re-reads the artifact through the store, which recomputes its SHA-256 against the
pinned digest, and re-checks its signature against the organisation's trusted keys. A
load that fails (digest mismatch, missing file, revoked or invalid signature, an
artifact the runtime no longer accepts) marks the version unhealthy with its reason,
writes a security event and counts a metric; predictions for it then get a 503 naming
the reason. Serving checks the version's status before its cached scorer, so a version
marked unhealthy anywhere (another process, `assay models verify`, a key revocation)
stops serving here too, within `model_resolution_cache_seconds`.

The cache is an LRU bounded by entry count and by *artifact bytes*. Artifact bytes are a
proxy for memory, not a measurement: a loaded runtime may take more or less memory than
its file (an ONNX graph roughly its size, a LightGBM text model less, a rules model
almost nothing, counted as 4 KiB).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta
from assay.core.errors import NotFound
from assay.core.logging import get_logger
from assay.core.memory import freeze_long_lived_objects
from assay.core.tenancy import OrganisationScope, scoped
from assay.engine.build import build_scorer
from assay.engine.errors import (
    ArtifactIntegrityError,
    InvalidArtifact,
    InvalidModelDefinition,
    UntrustedArtifact,
)
from assay.engine.runtimes import LoadPolicy
from assay.engine.schema.input_schema import compile_schema
from assay.engine.scorer import Scorer
from assay.engine.spec import parse_model_spec
from assay.registry.artifact_store import ArtifactStore
from assay.registry.errors import ModelUnavailable
from assay.registry.health import (
    COMPONENT_REASON,
    DIGEST_MISMATCH,
    HEALTHY,
    MISSING_ARTIFACT,
    Changed,
    mark_unhealthy,
    trusted_publisher_keys,
)
from assay.registry.models import ModelVersion, RegisteredModel
from assay.settings import Settings

INTEGRITY_FAILURES = Counter(
    "assay_model_integrity_failures",
    "Artifact loads refused because the digest did not match or the file was missing.",
)
LOAD_FAILURES = Counter(
    "assay_model_load_failures",
    "Version loads refused, by reason (integrity, untrusted, invalid).",
    ["reason"],
)
MODEL_LOADS = Counter("assay_model_loads", "Model versions loaded into memory, by kind.", ["kind"])
LOADED_MODELS = Gauge("assay_models_loaded", "Model versions currently loaded in memory.")
log = get_logger("assay.registry")
# A version that failed to load for a reason not kept in its row (a component was
# unavailable) is not retried on every request: the failure is remembered this long.
FAILURE_MEMORY_SECONDS = 5.0
# What a version without an artifact (rules, ensembles) counts as in the byte budget.
DEFINITION_ONLY_BYTES = 4096


@dataclass(frozen=True, slots=True)
class LoadedVersion:
    scorer: Scorer
    version_id: uuid.UUID
    content_digest: str
    size: int


def unhealthy_error(version: ModelVersion, model_name: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"Version {version.version} of '{model_name}' is unhealthy: "
        f"{version.status_reason or 'it failed to load'}."
    )


class ModelCache:
    """An LRU of loaded versions, bounded by count and by artifact bytes."""

    def __init__(
        self,
        settings: Settings,
        store: ArtifactStore,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self._settings = settings
        self._store = store
        self._sessionmaker = sessionmaker
        self._entries: OrderedDict[uuid.UUID, LoadedVersion] = OrderedDict()
        self._bytes = 0
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._failures: dict[uuid.UUID, tuple[float, str]] = {}

    def start(self) -> None:
        """At every lifespan start: the per-version load locks of an earlier lifespan may
        belong to another event loop (a lock waited on once is bound to its loop)."""
        self._locks.clear()

    def cached(self, version_id: uuid.UUID) -> LoadedVersion | None:
        entry = self._entries.get(version_id)
        if entry is not None:
            self._entries.move_to_end(version_id)
        return entry

    def loaded(self) -> list[LoadedVersion]:
        return list(self._entries.values())

    @property
    def loaded_bytes(self) -> int:
        return self._bytes

    def evict(self, version_id: uuid.UUID) -> None:
        self._failures.pop(version_id, None)
        entry = self._entries.pop(version_id, None)
        if entry is not None:
            self._bytes -= entry.size
            LOADED_MODELS.set(len(self._entries))

    def evict_changed(self, changed: Iterable[Changed]) -> None:
        for item in changed:
            self.evict(item.version_id)

    async def get(self, version: ModelVersion, model_name: str) -> LoadedVersion:
        # The status comes with the cached alias resolution: reading it costs nothing,
        # and a version marked unhealthy elsewhere stops serving from this cache too.
        if version.status != HEALTHY:
            self.evict(version.id)
            raise unhealthy_error(version, model_name)
        entry = self.cached(version.id)
        if entry is not None:
            return entry
        failed = self._failures.get(version.id)
        if failed is not None:
            if failed[0] > time.monotonic():
                raise ModelUnavailable(failed[1])
            del self._failures[version.id]
        lock = self._locks.setdefault(version.id, asyncio.Lock())
        async with lock:
            entry = self.cached(version.id)
            if entry is not None:
                return entry
            try:
                entry = await self._load_for_serving(version, model_name)
            except ModelUnavailable as exc:
                self._failures[version.id] = (time.monotonic() + FAILURE_MEMORY_SECONDS, exc.detail)
                raise
            self._remember(entry)
            return entry

    async def load_now(
        self, version: ModelVersion, model_name: str, db: AsyncSession
    ) -> LoadedVersion:
        """Load `version` now, bypassing the cache, and keep it (registration, verification).

        Lookups (trusted keys, pinned components) go through `db`, so rows the caller has
        not committed yet are seen. Errors are raised as they are (`InvalidArtifact`,
        `UntrustedArtifact`, `InvalidModelDefinition`, `ArtifactIntegrityError`,
        `ModelUnavailable` naming an unavailable component); nothing is marked.
        """
        entry = await self._build(version, model_name, db)
        self.evict(version.id)
        self._remember(entry)
        return entry

    def _remember(self, entry: LoadedVersion) -> None:
        self._entries[entry.version_id] = entry
        self._bytes += entry.size
        while len(self._entries) > 1 and (
            len(self._entries) > self._settings.model_cache_entries
            or self._bytes > self._settings.model_cache_max_bytes
        ):
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size
        LOADED_MODELS.set(len(self._entries))

    @asynccontextmanager
    async def _session(self, db: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        if db is not None:
            yield db
            return
        async with self._sessionmaker() as own:
            yield own

    def _policy(self, keys: Iterable[Any]) -> LoadPolicy:
        return LoadPolicy(
            allow_pickle=self._settings.allow_pickle_models,
            require_signatures=self._settings.require_model_signatures,
            trusted_keys=tuple(keys),
            skops_trusted_types=tuple(self._settings.skops_trusted_types),
            threads=self._settings.model_threads,
        )

    async def _pinned(
        self, version: ModelVersion, db: AsyncSession
    ) -> list[tuple[str, int, ModelVersion | None]]:
        pins: dict[str, int] = version.definition.get("pinned_components", {})
        scope = OrganisationScope(version.org_id)
        found: list[tuple[str, int, ModelVersion | None]] = []
        for name, number in pins.items():
            row = (
                await db.execute(
                    scoped(scope, ModelVersion)
                    .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
                    .where(RegisteredModel.name == name, ModelVersion.version == number)
                )
            ).scalar_one_or_none()
            found.append((name, number, row))
        return found

    async def _components(
        self, pinned: list[tuple[str, int, ModelVersion | None]]
    ) -> dict[str, Scorer]:
        components: dict[str, Scorer] = {}
        for name, number, row in pinned:
            if row is None:
                raise ModelUnavailable(
                    f"Ensemble component '{name}' v{number} is gone.",
                    extra={"component": name, "reason": f"{COMPONENT_REASON}'{name}' is gone"},
                )
            try:
                components[name] = (await self.get(row, name)).scorer
            except ModelUnavailable as exc:
                raise ModelUnavailable(
                    f"Ensemble component '{name}' v{number} is unavailable: {exc.detail}",
                    extra={
                        "component": name,
                        "reason": f"{COMPONENT_REASON}'{name}' v{number} is unavailable",
                    },
                ) from None
        return components

    async def _build(
        self, version: ModelVersion, model_name: str, db: AsyncSession | None
    ) -> LoadedVersion:
        definition: dict[str, Any] = version.definition
        artifact: bytes | None = None
        if version.artifact_digest is not None:
            try:
                artifact = await anyio.to_thread.run_sync(self._store.get, version.artifact_digest)
            except NotFound:
                raise ArtifactIntegrityError(
                    "The stored artifact is missing.", extra={"missing": True}
                ) from None
        async with self._session(db) as session:
            pinned = (
                await self._pinned(version, session) if "pinned_components" in definition else []
            )
            keys = (
                await trusted_publisher_keys(session, version.org_id)
                if version.artifact_digest is not None
                else []
            )
        components = await self._components(pinned) if pinned else None
        policy = self._policy(keys)

        def build() -> Scorer:
            return build_scorer(
                parse_model_spec(definition["spec"]),
                compile_schema(definition["schema"]),
                artifact=artifact,
                signature=version.signature,
                components=components,
                policy=policy,
                name=model_name,
            )

        scorer = await anyio.to_thread.run_sync(build)
        # A loaded model lives until evicted: keep full collections from walking it.
        freeze_long_lived_objects(collect_first=False)
        MODEL_LOADS.labels(scorer.kind).inc()
        log.info(
            "model_loaded",
            model=model_name,
            version=version.version,
            digest=version.artifact_digest,
        )
        return LoadedVersion(
            scorer=scorer,
            version_id=version.id,
            content_digest=version.content_digest,
            size=len(artifact) if artifact is not None else DEFINITION_ONLY_BYTES,
        )

    async def _load_for_serving(self, version: ModelVersion, model_name: str) -> LoadedVersion:
        """`_build`, turning a failure of this version into its unhealthy status."""
        try:
            return await self._build(version, model_name, None)
        except ArtifactIntegrityError as exc:
            reason = MISSING_ARTIFACT if exc.extra.get("missing") else DIGEST_MISMATCH
            await self.report_failure(version, model_name, reason, kind="integrity")
        except UntrustedArtifact as exc:
            reason = f"refused at load: {exc.detail}"
            await self.report_failure(version, model_name, reason, kind="untrusted")
        except (InvalidArtifact, InvalidModelDefinition) as exc:
            reason = f"failed to load: {exc.detail}"
            await self.report_failure(version, model_name, reason, kind="invalid")
        raise unhealthy_error(version, model_name)

    async def report_failure(
        self, version: ModelVersion, model_name: str, reason: str, *, kind: str
    ) -> None:
        """Count and record a refused load (`kind`: integrity, untrusted or invalid), mark
        the version unhealthy with `reason`, and evict it and the ensembles pinning it."""
        LOAD_FAILURES.labels(kind).inc()
        if kind == "integrity":
            INTEGRITY_FAILURES.inc()
        action = {
            "integrity": SecurityAction.MODEL_INTEGRITY_FAILED,
            "untrusted": SecurityAction.MODEL_LOAD_REFUSED,
        }.get(kind, SecurityAction.MODEL_LOAD_FAILED)
        await self._mark(version, model_name, reason, action)

    async def _mark(
        self, version: ModelVersion, model_name: str, reason: str, action: SecurityAction
    ) -> None:
        log.error(
            "model_unhealthy",
            model=model_name,
            version=version.version,
            digest=version.artifact_digest,
            reason=reason,
        )
        try:
            async with self._sessionmaker() as db:
                changed = await mark_unhealthy(
                    db,
                    RequestMeta(),
                    version,
                    model_name,
                    reason=reason,
                    action=action,
                    details={"expected_digest": version.artifact_digest},
                )
                await db.commit()
        except Exception:
            # The version still refuses to serve here (its status is set on the object the
            # resolution cache holds); only the record of it could not be written.
            log.exception("model_unhealthy_not_recorded", model=model_name)
            return
        self.evict_changed(changed)
