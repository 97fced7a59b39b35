"""`assay worker`: a process that runs jobs from the broker (ASSAY_JOBS_BROKER).

It builds the same services as the API (database, registry, predict service, jobs) but
serves no HTTP: it takes messages from the broker and works on their jobs' chunks, and
its sweeper sends again the jobs whose chunks a dead worker left behind. On SIGTERM or
SIGINT it takes no new message; a chunk in progress stops at its next checkpoint and is
released for another worker, then the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from taskiq.api import run_receiver_task

from assay.app import create_app
from assay.core.logging import get_logger
from assay.jobs.service import JobService
from assay.settings import Settings

log = get_logger("assay.worker")


async def run_worker(settings: Settings, concurrency: int) -> None:
    """Run jobs until SIGTERM or SIGINT, then stop gracefully."""
    app = create_app(settings)
    jobs: JobService = app.state.jobs
    # Set before the lifespan starts the jobs service: a worker runs the sweeper.
    jobs.broker.is_worker_process = True
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        receiver = asyncio.create_task(
            run_receiver_task(jobs.broker, max_async_tasks=concurrency, max_prefetch=0),
            name="jobs-receiver",
        )
        log.info("worker_ready", worker=jobs.runner.identity, concurrency=concurrency)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({receiver, stopped}, return_when=asyncio.FIRST_COMPLETED)
        log.info("worker_stopping", worker=jobs.runner.identity)
        # Chunks in progress stop at their next checkpoint and are released.
        jobs.runner.stopping.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.shutdown_grace_seconds):
                await jobs.runner.wait_idle()
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
        stopped.cancel()
    log.info("worker_stopped", worker=jobs.runner.identity)
