"""Concurrent cache misses for the same key share one load.

When a short-lived cache entry on the hot path expires under load, every request in
flight misses at once; without this, each would run the same database query (and wait
for a pooled connection to do it). Here the first miss starts the load as a task and
the others await that same task. The task is shielded, so a caller that goes away
(a disconnected client) does not cancel the load the others are waiting for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs at most one `load` per key at a time; concurrent callers share its result."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[T]] = {}

    async def run(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._running[key] = task
            task.add_done_callback(lambda _: self._running.pop(key, None))
        return await asyncio.shield(task)
