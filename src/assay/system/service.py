"""Readiness: whether every dependency this process needs answers in time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from assay.core.cache import Cache
from assay.core.db import Database
from assay.core.logging import get_logger

log = get_logger("assay.health")


async def _probe(name: str, check: Callable[[], Awaitable[None]], limit_seconds: float) -> str:
    try:
        await asyncio.wait_for(check(), timeout=limit_seconds)
    except TimeoutError:
        log.warning("readiness_check_failed", dependency=name, reason="timeout")
        return "timeout"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness_check_failed", dependency=name, reason=type(exc).__name__)
        return "unavailable"
    return "ok"


async def check_readiness(database: Database, cache: Cache, limit_seconds: float) -> dict[str, str]:
    """Run every dependency check concurrently, each bounded by `limit_seconds`."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {"database": database.ping}
    if cache.backend != "memory":
        checks[cache.backend] = cache.ping
    results = await asyncio.gather(*(_probe(n, c, limit_seconds) for n, c in checks.items()))
    return dict(zip(checks, results, strict=True))
