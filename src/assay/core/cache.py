"""One cache interface with an in-process backend and a Redis backend."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from assay.settings import Settings

# What a cache operation raises when its backend cannot answer (Redis stopped,
# unreachable or timing out). The in-process backend never raises them.
CACHE_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)


class Cache(Protocol):
    """Byte values under string keys, with an optional time to live."""

    backend: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """Store `value` only if `key` holds nothing live; True when this call stored it."""
        ...

    async def increment(self, key: str, ttl_seconds: float) -> int:
        """Add one to the counter under `key` and return it; a new counter lives for
        `ttl_seconds` from its first increment (a fixed window)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class InProcessCache:
    """A bounded LRU map; entries past their TTL are treated as absent."""

    backend = "memory"

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float | None, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at is not None and expires_at <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        expires_at = time.monotonic() + ttl_seconds if ttl_seconds is not None else None
        self._entries[key] = (expires_at, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def set_if_absent(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        # get() and set() never suspend, so nothing else runs between the check and the
        # write: atomic within the event loop.
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl_seconds)
        return True

    async def increment(self, key: str, ttl_seconds: float) -> int:
        # No await between reading and writing: atomic within the event loop.
        entry = self._entries.get(key)
        expires_at: float | None
        if entry is None or (entry[0] is not None and entry[0] <= time.monotonic()):
            count, expires_at = 1, time.monotonic() + ttl_seconds
        else:
            count, expires_at = int(entry[1]) + 1, entry[0]
        self._entries[key] = (expires_at, str(count).encode())
        self._entries.move_to_end(key)
        return count

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def ping(self) -> None:
        # Process memory is always there; an application may close and start it again
        # (a lifespan can run more than once), so closing only empties it.
        return None

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Cache shared by every process through one Redis server."""

    backend = "redis"

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.client: Redis = Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
        )

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        if ttl_seconds is None:
            await self.client.set(key, value)
        else:
            await self.client.set(key, value, px=max(1, int(ttl_seconds * 1000)))

    async def set_if_absent(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        # SET NX PX: one atomic command, so two processes cannot both claim the key.
        stored = await self.client.set(key, value, px=max(1, int(ttl_seconds * 1000)), nx=True)
        return bool(stored)

    async def increment(self, key: str, ttl_seconds: float) -> int:
        # INCR, and PEXPIRE NX only when the key is new, in one round trip: every process
        # counts into the same window.
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, max(1, int(ttl_seconds * 1000)), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def delete(self, key: str) -> None:
        await self.client.delete(key)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


def create_cache(settings: Settings) -> Cache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, settings.health_check_timeout_seconds)
    return InProcessCache(settings.cache_max_entries)


def create_prediction_cache(settings: Settings, shared: Cache) -> Cache:
    """Where cached predictions live: the shared Redis cache when there is one, else an
    in-process map of their own, so predictions never evict sessions, revocation markers
    or request-signing nonces from the shared one."""
    if shared.backend == "redis":
        return shared
    return InProcessCache(settings.prediction_cache_max_entries)
