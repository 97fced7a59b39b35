"""A pass of background work run again and again in this process until it stops.

The webhook dispatcher, the watchlist checker and the audit chainer all run one: a pass,
then a wait of `interval` seconds that ends early when the process stops or when
someone calls `wake()` (an event published here), and no wait at all when the pass says
there is more to do. One failing pass is logged and the loop goes on: a database
restart must not end a loop that every later request relies on. `last` runs once on
the way out (the chainer seals the events of the process's last requests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from assay.core.logging import get_logger

log = get_logger(__name__)

# A pass returns True when there is more to do at once (a full batch), else False/None.
Pass = Callable[[], Awaitable[bool | None]]


class PeriodicTask:
    def __init__(
        self,
        name: str,
        run_pass: Pass,
        interval_seconds: float,
        *,
        failure_event: str,
        last: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.name = name
        self._run_pass = run_pass
        self._interval = interval_seconds
        self._failure_event = failure_event
        self._last = last
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Let the pass under way finish, run `last`, and return."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _attempt(self, work: Callable[[], Awaitable[object]]) -> object:
        try:
            return await work()
        except Exception:  # one bad pass must not end the loop
            log.exception(self._failure_event)
            return None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            more = await self._attempt(self._run_pass)
            if more is True or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
        if self._last is not None:
            await self._attempt(self._last)
