"""The predict path and prediction records: one `PredictService` per application.

Predicting resolves the version (through a per-process cache of alias resolutions the
registry's change notices keep current), validates, scores off the event loop (single
records through the micro-batcher) and records every prediction. The service also owns
the recorder's lifecycle and reads the records back, a page at a time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.core.cache import Cache
from assay.core.crypto import Keyring
from assay.core.errors import NotFound, ValidationFailed
from assay.core.principal import OrgPrincipal
from assay.core.single_flight import SingleFlight
from assay.core.tenancy import scoped
from assay.engine.results import PredictionResult, RowError, ValidatedRecord
from assay.engine.scorer import Scorer
from assay.predictions.batcher import MicroBatcher
from assay.predictions.metrics import ModelSeries
from assay.predictions.models import PredictionRecord
from assay.predictions.records import (
    PredictionRecorder,
    RecordFilter,
    list_records,
    read_private_inputs,
    split_inputs,
)
from assay.predictions.result_cache import PredictionCache
from assay.predictions.schemas import CacheOutcome
from assay.predictions.threads import ScoringThreads
from assay.registry.models import ModelVersion, RegisteredModel
from assay.registry.schemas import VersionRef
from assay.registry.service import ModelRegistry
from assay.settings import Settings


@dataclass(frozen=True, slots=True)
class Resolved:
    model: RegisteredModel
    version: ModelVersion


@dataclass(frozen=True, slots=True)
class Served:
    """A resolved version and its loaded scorer: everything needed to score."""

    model: RegisteredModel
    version: ModelVersion
    scorer: Scorer


@dataclass(frozen=True, slots=True)
class PredictOutcome:
    model: RegisteredModel
    version: ModelVersion
    results: list[PredictionResult | RowError]
    latency_ms: float
    # Set when the prediction cache was consulted (one record); None for a batch.
    cache: CacheOutcome | None = None


class PredictService:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: ModelRegistry,
        keyring: Keyring,
        result_cache: Cache,
    ) -> None:
        self.settings = settings
        # The predict path opens a database session only when it needs one (a resolution
        # cache miss, synchronous records): with every cache warm it touches no database.
        self.sessionmaker = sessionmaker
        self.registry = registry
        # The registry's loaded versions, read on every request with no call between.
        self.cache = registry.cache
        self.recorder = PredictionRecorder(settings, sessionmaker)
        self.keyring = keyring
        self.result_cache = PredictionCache(settings, result_cache, keyring)
        self.threads = ScoringThreads(settings.scoring_threads)
        self.batcher = MicroBatcher(
            max_size=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
            threads=self.threads,
        )
        # (org, model name, alias, version) -> (expires at, resolution); alias moves
        # reach other processes within model_resolution_cache_seconds.
        self._resolutions: dict[tuple[Any, ...], tuple[float, Resolved]] = {}
        self._resolving: SingleFlight[Resolved] = SingleFlight()
        self.series = ModelSeries(settings.metrics_model_series_limit)

    def start(self) -> None:
        """At every lifespan start: the recorder's flush loop."""
        self.recorder.start()

    async def stop(self) -> None:
        """Write the buffered records, then let the scoring threads go."""
        try:
            await self.recorder.stop()
        finally:
            self.threads.close()

    def forget(self, org_id: uuid.UUID, model_name: str) -> None:
        """Drop the model's cached alias resolutions (the registry calls this after a
        change commits), so the next request here reads them again."""
        for key in [k for k in self._resolutions if k[0] == org_id and k[1] == model_name]:
            del self._resolutions[key]

    async def resolve(self, principal: OrgPrincipal, name: str, ref: VersionRef) -> Resolved:
        key = (principal.org_id, name, ref.alias, ref.version)
        hit = self._resolutions.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        # When the entry expires under load, every request in flight misses at once:
        # they share one lookup instead of queueing for pooled connections.
        return await self._resolving.run(key, lambda: self._lookup(key, principal, name, ref))

    async def _lookup(
        self, key: tuple[Any, ...], principal: OrgPrincipal, name: str, ref: VersionRef
    ) -> Resolved:
        async with self.sessionmaker() as db:
            model, version = await self.registry.resolve(db, principal, name, ref)
            # Cached beyond this session: detach them, so nothing expires the attributes
            # other requests read.
            db.expunge(model)
            db.expunge(version)
        resolved = Resolved(model, version)
        ttl = self.settings.model_resolution_cache_seconds
        if ttl > 0:
            self._resolutions[key] = (time.monotonic() + ttl, resolved)
        return resolved

    async def load(self, principal: OrgPrincipal, name: str, ref: VersionRef) -> Served:
        """Resolve `ref` inside the principal's organisation and load that version."""
        resolved = await self.resolve(principal, name, ref)
        try:
            loaded = await self.cache.get(resolved.version, resolved.model.name)
        except Exception:
            model, version = resolved.model.name, resolved.version.version
            self.series.observe(
                model, version, outcome="unavailable", seconds=0.0, records=0, invalid=0
            )
            raise
        return Served(resolved.model, resolved.version, loaded.scorer)

    async def predict(
        self,
        principal: OrgPrincipal,
        name: str,
        ref: VersionRef,
        records: Sequence[object],
        *,
        strict: bool,
        explain: bool,
        request_id: str | None,
    ) -> PredictOutcome:
        """Score `records` with the version `ref` names, and record every prediction."""
        self._check_size(records)
        served = await self.load(principal, name, ref)
        return await self._score_and_record(
            principal, served, records, strict=strict, explain=explain, request_id=request_id
        )

    async def predict_with(
        self,
        principal: OrgPrincipal,
        served: Served,
        records: Sequence[object],
        *,
        strict: bool,
        explain: bool,
        request_id: str | None,
    ) -> PredictOutcome:
        """`predict` for a caller that loaded the version itself (to read its schema first)."""
        self._check_size(records)
        return await self._score_and_record(
            principal, served, records, strict=strict, explain=explain, request_id=request_id
        )

    async def score_unrecorded(
        self,
        principal: OrgPrincipal,
        served: Served,
        records: Sequence[object],
        *,
        explain: bool,
        request_id: str | None,
    ) -> tuple[list[PredictionResult | RowError], list[dict[str, Any]]]:
        """Validate and score `records` exactly as `predict` does (row errors are results),
        and return the prediction records for the caller to write in its own transaction
        with `write_records` (a job commits them with its checkpoint, exactly once)."""
        started = time.perf_counter()
        results = await self._score(served.scorer, records, explain)
        latency_ms = (time.perf_counter() - started) * 1000
        rows = self._record_rows(principal, served, records, results, latency_ms, request_id)
        return results, rows

    async def write_records(self, db: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Write prediction records from `score_unrecorded` in the caller's transaction."""
        if rows:
            await self.recorder.write_now(db, rows)

    def _check_size(self, records: Sequence[object]) -> None:
        if len(records) > self.settings.predict_max_batch:
            raise ValidationFailed(
                f"At most {self.settings.predict_max_batch} records per request.",
                errors=[
                    {
                        "field": "records",
                        "code": "too_many",
                        "message": f"max {self.settings.predict_max_batch}",
                    }
                ],
            )

    async def _score(
        self, scorer: Scorer, records: Sequence[object], explain: bool
    ) -> list[PredictionResult | RowError]:
        if len(records) == 1:
            # One record: validated here, on the event loop. It is pure Python (tens of
            # microseconds), so a thread would not run it any sooner, only add a hop; a
            # valid record then joins the micro-batcher, which merges it with the other
            # requests' records into one model call in the thread pool.
            checked = scorer.validate(records)[0]
            if isinstance(checked, RowError):
                return [checked]
            return [await self.batcher.score(scorer, checked, explain=explain)]
        # A batch is already one vectorised call; validating hundreds of rows would hold
        # the event loop, so all of it runs in the thread pool.
        return await self.threads.run(lambda: scorer.score_batch(records, explain=explain))

    async def _score_and_record(
        self,
        principal: OrgPrincipal,
        served: Served,
        records: Sequence[object],
        *,
        strict: bool,
        explain: bool,
        request_id: str | None,
    ) -> PredictOutcome:
        model, version = served.model.name, served.version.version
        started = time.perf_counter()
        cache: CacheOutcome | None = None
        try:
            if len(records) == 1:
                results, cache = await self._score_one(principal, served, records[0], explain)
            else:
                results = await self._score(served.scorer, records, explain)
        except Exception:
            self.series.observe(
                model, version, outcome="error", seconds=0.0, records=len(records), invalid=0
            )
            raise
        seconds = time.perf_counter() - started
        latency_ms = seconds * 1000
        failing = [r for r in results if isinstance(r, RowError)]
        self.series.observe(
            model,
            version,
            outcome="invalid" if strict and failing else "ok",
            seconds=seconds,
            records=len(records),
            invalid=len(failing),
        )
        if strict and failing:
            raise ValidationFailed(
                f"{len(failing)} of {len(records)} records are invalid; nothing was scored.",
                errors=[
                    {
                        "field": f"records.{row.index}.{err.field}"
                        if err.field
                        else f"records.{row.index}",
                        "code": err.code,
                        "message": err.message,
                    }
                    for row in failing
                    for err in row.errors
                ],
            )
        rows = self._record_rows(
            principal,
            served,
            records,
            results,
            latency_ms,
            request_id,
            cache_hit=cache is CacheOutcome.HIT,
        )
        if rows:
            if self.recorder.synchronous:
                async with self.sessionmaker() as db, db.begin():
                    await self.recorder.write_now(db, rows)
            else:
                self.recorder.add(rows)
        return PredictOutcome(served.model, served.version, results, latency_ms, cache)

    async def _score_one(
        self, principal: OrgPrincipal, served: Served, record: object, explain: bool
    ) -> tuple[list[PredictionResult | RowError], CacheOutcome | None]:
        """One record, as `_score` does it, through the prediction cache once it is valid."""
        checked = served.scorer.validate([record])[0]
        if isinstance(checked, RowError):
            return [checked], None
        valid: ValidatedRecord = checked
        result, outcome = await self.result_cache.serve(
            principal.org_id,
            served.version,
            valid,
            explain=explain,
            compute=lambda: self.batcher.score(served.scorer, valid, explain=explain),
        )
        return [result], outcome

    def _record_rows(
        self,
        principal: OrgPrincipal,
        served: Served,
        records: Sequence[object],
        results: Sequence[PredictionResult | RowError],
        latency_ms: float,
        request_id: str | None,
        *,
        cache_hit: bool = False,
    ) -> list[dict[str, Any]]:
        version = served.version
        pii = served.scorer.schema.pii_fields
        pii_mode = version.definition.get("records", {}).get("pii", "encrypt")
        per_record = latency_ms / max(len(records), 1)
        rows: list[dict[str, Any]] = []
        for result in results:
            if not isinstance(result, PredictionResult):
                continue
            raw = records[result.index]
            inputs = raw if isinstance(raw, dict) else {}
            plain, sealed = split_inputs(inputs, pii, pii_mode, self.keyring, version.org_id)
            rows.append(
                {
                    "org_id": version.org_id,
                    "model_id": served.model.id,
                    "model_name": served.model.name,
                    "version_id": version.id,
                    "version": version.version,
                    "content_digest": version.content_digest,
                    "principal_kind": principal.kind,
                    "principal_id": principal.actor_id,
                    "request_id": request_id,
                    "inputs": plain,
                    "inputs_encrypted": sealed,
                    "derived": dict(result.derived),
                    "score": result.score,
                    "label": result.label,
                    "risk": result.risk,
                    "latency_ms": per_record,
                    "cache_hit": cache_hit,
                }
            )
        return rows

    async def record_inputs(
        self, db: AsyncSession, principal: OrgPrincipal, record_id: uuid.UUID
    ) -> tuple[PredictionRecord, dict[str, Any]]:
        """A record and its inputs with the sealed personal-data fields opened."""
        record = await db.scalar(
            scoped(principal, PredictionRecord).where(PredictionRecord.id == record_id)
        )
        if record is None:
            raise NotFound(f"No prediction record {record_id} in this organisation.")
        return record, {**record.inputs, **read_private_inputs(self.keyring, record)}

    async def list_records(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        filters: RecordFilter,
        *,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[PredictionRecord], str | None]:
        """One page of the organisation's records, newest first, and the next page's cursor."""
        return await list_records(db, principal, filters, cursor=cursor, limit=limit)
