"""The in-process rate-limit storage: correct windows, and memory that empties itself."""

from __future__ import annotations

import time_machine
from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from assay.http.rate_limit_storage import InProcessRateLimitStorage, redis_storage_uri

START = "2026-11-23 12:00:00+00:00"


async def test_sliding_window_allows_the_limit_then_refuses() -> None:
    storage = InProcessRateLimitStorage()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("3/minute")
    with time_machine.travel(START, tick=False):
        assert [await limiter.hit(item, "k") for _ in range(4)] == [True, True, True, False]
        stats = await limiter.get_window_stats(item, "k")
    assert stats.remaining == 0


async def test_the_previous_window_still_weighs_on_the_next() -> None:
    storage = InProcessRateLimitStorage()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("4/minute")
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(4):
            assert await limiter.hit(item, "k")
        clock.shift(60 + 15)  # a quarter into the next window: 3/4 of 4 still count
        assert await limiter.hit(item, "k")
        assert not await limiter.hit(item, "k")
        clock.shift(60)  # the full window has passed
        assert await limiter.hit(item, "k")


async def test_counters_of_departed_clients_are_dropped() -> None:
    storage = InProcessRateLimitStorage()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("10/minute")
    with time_machine.travel(START, tick=False) as clock:
        for client in range(1000):
            await limiter.hit(item, f"client-{client}")
        assert len(storage) == 1000
        clock.shift(3 * 60)  # counters live two windows
        await limiter.hit(item, "newcomer")
        assert len(storage) == 1


async def test_a_key_recreated_after_expiry_keeps_its_new_lifetime() -> None:
    storage = InProcessRateLimitStorage()
    with time_machine.travel(START, tick=False) as clock:
        assert await storage.incr("k", 10) == 1
        clock.shift(11)
        assert await storage.incr("k", 10) == 1  # a fresh counter
        clock.shift(5)
        assert await storage.get("k") == 1  # the first lifetime's expiry did not remove it
        clock.shift(6)
        assert await storage.get("k") == 0


async def test_clear_and_reset() -> None:
    storage = InProcessRateLimitStorage()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("1/minute")
    assert await limiter.hit(item, "a")
    assert not await limiter.hit(item, "a")
    await limiter.clear(item, "a")
    assert await limiter.hit(item, "a")
    assert await storage.reset() == 1
    assert len(storage) == 0
    assert await storage.check()


def test_redis_urls_map_to_limits_storage_uris() -> None:
    assert redis_storage_uri("redis://h:6379/1") == "async+redis://h:6379/1"
    assert redis_storage_uri("rediss://h:6380/0") == "async+rediss://h:6380/0"
    assert redis_storage_uri("unix:///run/redis.sock") == "async+redis+unix:///run/redis.sock"
