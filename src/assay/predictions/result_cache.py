"""The prediction cache: a repeated single-record prediction answered without scoring.

The key is the organisation, the version's content digest (its definition and artifact
digest, never a name or an alias), which options change the answer (`explain`) and a
SHA-256 of the validated record's canonical JSON: no raw input is ever part of a key.
A version is immutable, so an entry can only be a copy of what scoring would give; an
alias move resolves to another digest, and another organisation to another prefix.

Values are the scored result as JSON, sealed with the keyring under the key itself as
associated data: the cache holds no clear-text derived values or explanations, and an
entry cannot be replayed under another key. Only the scoring is skipped: the caller
authenticates, rate limits, logs and records a hit as it does a miss.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter

from assay.core.cache import CACHE_ERRORS, Cache
from assay.core.crypto import Keyring
from assay.core.logging import get_logger
from assay.engine.explanations import StoredExplanation
from assay.engine.results import PredictionResult, RowError, ValidatedRecord
from assay.predictions.schemas import CacheOutcome
from assay.registry.models import ModelVersion
from assay.settings import Settings

KEY_PREFIX = "assay:prediction:v1"
# After a failed cache call, predictions skip the cache this long: a cache that hangs
# must not add its timeout to every request.
RETRY_AFTER_SECONDS = 1.0

# An entry that does not decrypt or decode (DecryptionError is a ValueError, as is
# malformed JSON).
_UNREADABLE = (ValueError, KeyError, TypeError)

log = get_logger("assay.prediction_cache")


PREDICTION_CACHE = Counter(
    "assay_prediction_cache",
    "Single-record predictions by cache outcome: hit, miss, off (disabled, or opted out "
    "by the model) or error (the cache failed and the prediction was computed).",
    ["outcome"],
)


def prediction_cache_key(
    org_id: uuid.UUID, content_digest: str, record: ValidatedRecord, *, explain: bool
) -> str:
    """The cache key of one validated record: identifiers and digests only."""
    inputs = hashlib.sha256(record.canonical_json().encode()).hexdigest()
    options = "explain" if explain else "plain"
    return f"{KEY_PREFIX}:{org_id}:{content_digest}:{options}:{inputs}"


def model_cache_ttl(version: ModelVersion, default_ttl: float) -> float | None:
    """The version's time to live from its manifest's `cache` entry; None when off."""
    policy = version.definition.get("cache")
    if policy == "off":
        return None
    if isinstance(policy, dict):
        return float(policy["ttl_seconds"])
    return default_ttl


def _encode(result: PredictionResult) -> bytes:
    document = result.as_dict()
    del document["index"]  # a position in the request, not part of the answer
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def _decode(raw: bytes, index: int) -> PredictionResult:
    document: dict[str, Any] = json.loads(raw)
    explanation = document["explanation"]
    return PredictionResult(
        index=index,
        score=float(document["score"]),
        label=document["label"],
        risk=document["risk"],
        explanation=None if explanation is None else StoredExplanation(explanation),
        derived=document["derived"],
    )


class PredictionCache:
    """Serves single-record predictions from a `Cache`, counting every outcome."""

    def __init__(self, settings: Settings, backend: Cache, keyring: Keyring) -> None:
        self.settings = settings
        self.backend = backend
        self.keyring = keyring
        self._resume_at = 0.0

    async def serve(
        self,
        org_id: uuid.UUID,
        version: ModelVersion,
        record: ValidatedRecord,
        *,
        explain: bool,
        compute: Callable[[], Awaitable[PredictionResult | RowError]],
    ) -> tuple[PredictionResult | RowError, CacheOutcome]:
        """The cached result for `record`, or `compute()`'s (stored for the next call)."""
        outcome, key, ttl = self._plan(org_id, version, record, explain=explain)
        if key is not None:
            try:
                raw = await self.backend.get(key)
            except CACHE_ERRORS as exc:
                # The backend failed: computing is always a right answer.
                self._failed("read", exc)
                outcome, key = CacheOutcome.ERROR, None
            else:
                hit = None if raw is None else self._open(raw, key, record.index)
                if hit is not None:
                    PREDICTION_CACHE.labels(CacheOutcome.HIT).inc()
                    return hit, CacheOutcome.HIT
                if raw is not None:
                    outcome = CacheOutcome.ERROR  # unreadable: computed, and replaced below
        result = await compute()
        if key is not None and isinstance(result, PredictionResult):
            stored = await self._store(key, ttl, result)
            outcome = CacheOutcome.ERROR if CacheOutcome.ERROR in (outcome, stored) else stored
        PREDICTION_CACHE.labels(outcome).inc()
        return result, outcome

    def _open(self, raw: bytes, key: str, index: int) -> PredictionResult | None:
        """The entry's result, or None when it was sealed with a key no longer in the
        ring, or is damaged."""
        try:
            return _decode(self.keyring.decrypt(raw, key.encode()), index)
        except _UNREADABLE:
            return None

    def _plan(
        self, org_id: uuid.UUID, version: ModelVersion, record: ValidatedRecord, *, explain: bool
    ) -> tuple[CacheOutcome, str | None, float]:
        if not self.settings.prediction_cache_enabled:
            return CacheOutcome.OFF, None, 0.0
        ttl = model_cache_ttl(version, self.settings.prediction_cache_ttl_seconds)
        if ttl is None:
            return CacheOutcome.OFF, None, 0.0
        if self._resume_at:
            if time.monotonic() < self._resume_at:
                return CacheOutcome.ERROR, None, 0.0
            self._resume_at = 0.0
        key = prediction_cache_key(org_id, version.content_digest, record, explain=explain)
        return CacheOutcome.MISS, key, ttl

    async def _store(self, key: str, ttl: float, result: PredictionResult) -> CacheOutcome:
        try:
            value = _encode(result)
        except ValueError:
            return CacheOutcome.MISS  # a non-finite value in an explanation: not kept
        if len(value) > self.settings.prediction_cache_max_entry_bytes:
            return CacheOutcome.MISS
        try:
            await self.backend.set(key, self.keyring.encrypt(value, key.encode()), ttl)
        except CACHE_ERRORS as exc:
            self._failed("store", exc)
            return CacheOutcome.ERROR
        return CacheOutcome.MISS

    def _failed(self, operation: str, exc: BaseException) -> None:
        now = time.monotonic()
        # One line per pause, not one per request, while the backend is down.
        if not self._resume_at or now >= self._resume_at:
            log.warning(
                "prediction_cache_unavailable",
                backend=self.backend.backend,
                operation=operation,
                error=type(exc).__name__,
            )
        self._resume_at = now + RETRY_AFTER_SECONDS
