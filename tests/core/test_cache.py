from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from assay.core.cache import CACHE_ERRORS, Cache, InProcessCache, RedisCache, create_cache
from assay.settings import Settings

from ..conftest import REDIS_URL, require_service


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "redis":
        require_service("redis")
        backend: Cache = RedisCache(REDIS_URL, 2.0)
    else:
        backend = InProcessCache(max_entries=3)
    yield backend
    await backend.close()


def _key() -> str:
    return f"assay-test:{uuid.uuid4().hex}"


async def test_set_get_delete(cache: Cache) -> None:
    key = _key()
    assert await cache.get(key) is None
    await cache.set(key, b"value")
    assert await cache.get(key) == b"value"
    await cache.delete(key)
    assert await cache.get(key) is None


async def test_entries_expire(cache: Cache) -> None:
    key = _key()
    await cache.set(key, b"short-lived", ttl_seconds=0.05)
    assert await cache.get(key) == b"short-lived"
    await asyncio.sleep(0.1)
    assert await cache.get(key) is None


async def test_ping_answers_while_the_backend_can(cache: Cache) -> None:
    await cache.ping()
    await cache.set(_key(), b"still usable after a ping")


async def test_ping_fails_when_redis_cannot_answer(free_port: int) -> None:
    # Nothing listens on a free port: readiness must report the cache as down.
    unreachable = RedisCache(f"redis://127.0.0.1:{free_port}/0", 0.5)
    try:
        with pytest.raises(CACHE_ERRORS):
            await unreachable.ping()
    finally:
        await unreachable.close()


async def test_in_process_cache_evicts_least_recently_used() -> None:
    cache = InProcessCache(max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    assert await cache.get("a") == b"1"  # "b" is now the least recently used
    await cache.set("c", b"3")
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"
    assert await cache.get("c") == b"3"


def test_backend_follows_settings() -> None:
    assert create_cache(Settings()).backend == "memory"
    assert create_cache(Settings(redis_url="redis://127.0.0.1:6379/15")).backend == "redis"


async def test_set_if_absent_stores_only_the_first_value(cache: Cache) -> None:
    key = _key()
    assert await cache.set_if_absent(key, b"first", ttl_seconds=5) is True
    assert await cache.set_if_absent(key, b"second", ttl_seconds=5) is False
    assert await cache.get(key) == b"first"


async def test_set_if_absent_succeeds_again_after_expiry(cache: Cache) -> None:
    key = _key()
    assert await cache.set_if_absent(key, b"first", ttl_seconds=0.05) is True
    await asyncio.sleep(0.1)
    assert await cache.set_if_absent(key, b"again", ttl_seconds=5) is True
    assert await cache.get(key) == b"again"


async def test_set_if_absent_admits_one_of_many_concurrent_claims(cache: Cache) -> None:
    key = _key()
    results = await asyncio.gather(
        *(cache.set_if_absent(key, b"%d" % i, ttl_seconds=5) for i in range(20))
    )
    assert results.count(True) == 1
