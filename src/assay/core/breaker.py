"""A circuit breaker and a cool-down per (organisation, name), kept in the cache: one per
evidence provider, and one per scan target (named `target/<name>`, which no provider name
can be, so the two never share one).

The state lives in the cache backend (in process by default, Redis in scale-out), so
every API process and worker sees the same breaker: failures counted in one process
open it for all. Closed: calls go through and failures are counted in a fixed window.
Open: no call until the cool-down ends. Then calls go through again, on probation: one
more failure opens it at once; a success closes it and clears the count. A 429 from the
provider opens a separate cool-down for its Retry-After, so nobody retries into it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum

from assay.core.cache import CACHE_ERRORS, Cache
from assay.core.logging import get_logger
from assay.settings import Settings

log = get_logger("assay.breaker")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # the cool-down ended; the next failure opens it again


@dataclass(frozen=True, slots=True)
class BreakerView:
    state: BreakerState
    failures: int
    # Epoch seconds a 429's cool-down ends, if one is running.
    cooldown_until: float | None


class CircuitBreaker:
    def __init__(self, settings: Settings, cache: Cache) -> None:
        self._cache = cache
        self._threshold = settings.provider_breaker_failures
        self._window = settings.provider_breaker_window_seconds
        self._cooldown = settings.provider_breaker_cooldown_seconds
        self._max_cooldown = settings.provider_max_cooldown_seconds

    @staticmethod
    def _key(org_id: uuid.UUID, provider: str, part: str) -> str:
        return f"provider:{org_id}:{provider}:{part}"

    async def blocked(self, org_id: uuid.UUID, provider: str) -> str | None:
        """Why `provider` may not be called now ("circuit_open", "rate_limited"), or None.

        A cache that cannot answer blocks nothing: the provider's own timeouts still apply.
        """
        try:
            if await self._cache.get(self._key(org_id, provider, "open")) is not None:
                return "circuit_open"
            if await self._cache.get(self._key(org_id, provider, "cooldown")) is not None:
                return "rate_limited"
        except CACHE_ERRORS:
            log.warning("provider_breaker_unavailable", provider=provider)
        return None

    async def succeeded(self, org_id: uuid.UUID, provider: str) -> bool:
        """Clear the failures; True when this success closed a half-open breaker."""
        try:
            probation = self._key(org_id, provider, "probation")
            was_half_open = await self._cache.get(probation) is not None
            await self._cache.delete(self._key(org_id, provider, "failures"))
            if was_half_open:
                await self._cache.delete(probation)
        except CACHE_ERRORS:
            log.warning("provider_breaker_unavailable", provider=provider)
            return False
        return was_half_open

    async def failed(self, org_id: uuid.UUID, provider: str) -> bool:
        """Count a failure; True when this one opened the breaker."""
        try:
            on_probation = (
                await self._cache.get(self._key(org_id, provider, "probation")) is not None
            )
            count = await self._cache.increment(
                self._key(org_id, provider, "failures"), self._window
            )
            if on_probation or count >= self._threshold:
                await self._open(org_id, provider)
                return True
        except CACHE_ERRORS:
            log.warning("provider_breaker_unavailable", provider=provider)
        return False

    async def _open(self, org_id: uuid.UUID, provider: str) -> None:
        until = json.dumps({"until": time.time() + self._cooldown}).encode()
        await self._cache.set(self._key(org_id, provider, "open"), until, self._cooldown)
        # Probation outlasts the cool-down: the first call after it is the probe.
        await self._cache.set(
            self._key(org_id, provider, "probation"), b"1", self._cooldown + self._window
        )
        await self._cache.delete(self._key(org_id, provider, "failures"))
        log.warning("provider_breaker_opened", org=str(org_id), provider=provider)

    async def cool_down(self, org_id: uuid.UUID, provider: str, retry_after: float) -> None:
        """The provider answered 429: call it again only after `retry_after` seconds."""
        seconds = min(max(retry_after, 1.0), float(self._max_cooldown))
        until = json.dumps({"until": time.time() + seconds}).encode()
        try:
            await self._cache.set(self._key(org_id, provider, "cooldown"), until, seconds)
        except CACHE_ERRORS:
            log.warning("provider_breaker_unavailable", provider=provider)

    async def view(self, org_id: uuid.UUID, provider: str) -> BreakerView:
        try:
            opened = await self._cache.get(self._key(org_id, provider, "open"))
            probation = await self._cache.get(self._key(org_id, provider, "probation"))
            failures = await self._cache.get(self._key(org_id, provider, "failures"))
            cooldown = await self._cache.get(self._key(org_id, provider, "cooldown"))
        except CACHE_ERRORS:
            return BreakerView(BreakerState.CLOSED, 0, None)
        if opened is not None:
            state = BreakerState.OPEN
        elif probation is not None:
            state = BreakerState.HALF_OPEN
        else:
            state = BreakerState.CLOSED
        until = json.loads(cooldown)["until"] if cooldown is not None else None
        return BreakerView(state, int(failures or 0), until)
