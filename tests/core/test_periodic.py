"""The background loop every periodic worker of a process runs (core.periodic)."""

from __future__ import annotations

import asyncio

from assay.core.periodic import PeriodicTask

# Long enough that a test would hang, not pass, if the loop waited it out.
NEVER = 3600.0


async def test_a_failing_pass_is_logged_and_the_loop_goes_on_when_woken() -> None:
    passes: list[int] = []
    first, second = asyncio.Event(), asyncio.Event()

    async def run_pass() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            first.set()  # a wake from now on is kept: the loop clears it before a pass
            raise RuntimeError("the database restarted")
        second.set()

    loop = PeriodicTask("t", run_pass, NEVER, failure_event="t_failed")
    loop.start()
    await asyncio.wait_for(first.wait(), 10)
    loop.wake()
    await asyncio.wait_for(second.wait(), 10)
    await loop.stop()
    assert passes == [0, 1]


async def test_a_pass_with_more_to_do_runs_again_without_waiting() -> None:
    remaining = [3]
    done = asyncio.Event()

    async def run_pass() -> bool:
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set()
        return remaining[0] > 0

    loop = PeriodicTask("t", run_pass, NEVER, failure_event="t_failed")
    loop.start()
    await asyncio.wait_for(done.wait(), 10)
    await loop.stop()
    assert remaining == [0]


async def test_stop_ends_the_wait_and_runs_the_last_pass_once() -> None:
    calls: list[str] = []

    async def run_pass() -> None:
        calls.append("pass")

    async def last() -> None:
        calls.append("last")

    loop = PeriodicTask("t", run_pass, NEVER, failure_event="t_failed", last=last)
    loop.start()
    await asyncio.sleep(0)
    await asyncio.wait_for(loop.stop(), 10)
    assert calls == ["pass", "last"]
