"""Rate-limit storage for the `limits` library: in process, or shared through Redis.

`limits`' own asynchronous memory storage re-scans every key from a background task
scheduled on almost every hit; with tens of thousands of clients in a window that
costs milliseconds per request. This one expires keys from a heap, so each call costs
O(log n) whatever the number of clients. Everything runs between two awaits, so no
lock is needed on one event loop.
"""

from __future__ import annotations

import heapq
import time
from math import floor

from limits.aio.storage import RedisStorage, SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow


class InProcessRateLimitStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Counters with expiry for one process (the sliding-window-counter strategy)."""

    def __init__(self) -> None:
        super().__init__(uri=None, wrap_exceptions=False)
        self._counters: dict[str, int] = {}
        self._expires_at: dict[str, float] = {}
        self._expiry_heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        """Live counters: what the storage holds in memory."""
        return len(self._counters)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _expire(self, now: float) -> None:
        heap = self._expiry_heap
        while heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            # A key recreated after expiring has a newer entry; this one is stale.
            if self._expires_at.get(key) == expires_at:
                del self._expires_at[key]
                del self._counters[key]

    def _increment(self, key: str, expiry: float, amount: int, now: float) -> int:
        self._expire(now)
        count = self._counters.get(key)
        if count is None:
            expires_at = now + expiry
            self._counters[key] = amount
            self._expires_at[key] = expires_at
            heapq.heappush(self._expiry_heap, (expires_at, key))
            return amount
        count += amount
        self._counters[key] = count
        return count

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._increment(key, expiry, amount, time.time())

    async def get(self, key: str) -> int:
        self._expire(time.time())
        return self._counters.get(key, 0)

    async def get_expiry(self, key: str) -> float:
        return self._expires_at.get(key, time.time())

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self._counters)
        self._counters.clear()
        self._expires_at.clear()
        self._expiry_heap.clear()
        return count

    async def clear(self, key: str) -> None:
        self._counters.pop(key, None)
        self._expires_at.pop(key, None)

    def _window(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float, str]:
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        self._expire(now)
        previous_count = self._counters.get(previous_key, 0)
        current_count = self._counters.get(current_key, 0)
        # Same arithmetic as limits' own storages, so the strategy reads us identically.
        previous_ttl = (
            0.0 if previous_count == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        )
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, current_count, current_ttl, current_key

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = time.time()
        previous_count, previous_ttl, current_count, _, current_key = self._window(key, expiry, now)
        weighted = previous_count * previous_ttl / expiry + current_count
        if floor(weighted) + amount > limit:
            return False
        self._increment(current_key, 2 * expiry, amount, now)
        return True

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        previous_count, previous_ttl, current_count, current_ttl, _ = self._window(
            key, expiry, time.time()
        )
        return previous_count, previous_ttl, current_count, current_ttl

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        await self.clear(previous_key)
        await self.clear(current_key)


def redis_storage_uri(redis_url: str) -> str:
    """The `limits` URI for a redis-py URL (redis://, rediss:// or unix://)."""
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url


def create_redis_storage(redis_url: str, namespace: str, timeout_seconds: float) -> RedisStorage:
    """Shared storage; errors surface as `limits.errors.StorageError`."""
    return RedisStorage(
        redis_storage_uri(redis_url),
        wrap_exceptions=True,
        implementation="redispy",
        key_prefix=f"{namespace}:ratelimit",
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
    )


async def close_storage(storage: Storage) -> None:
    """Release the storage's connections (a no-op in process). `limits` has no public
    close, so this reaches the Redis client through the storage's bridge."""
    bridge = getattr(storage, "bridge", None)
    client = getattr(bridge, "storage", None)
    close = getattr(client, "aclose", None)
    if close is not None:
        await close()
