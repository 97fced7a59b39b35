"""Run Assay under uvicorn with the lifecycle settings we rely on."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from assay.core.logging import get_logger
from assay.core.metrics import (
    MetricsListener,
    disable_multiprocess_mode,
    enable_multiprocess_mode,
    start_metrics_listener,
)
from assay.http.server_protocol import BoundedHttpToolsProtocol
from assay.settings import Settings

APP_FACTORY = "assay.app:app_from_environment"
HTTP_PROTOCOL = "assay.http.server_protocol:BoundedHttpToolsProtocol"

log = get_logger("assay.server")


class ServerStartError(RuntimeError):
    """The server cannot start; the message says why."""


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        # On SIGTERM uvicorn stops accepting, then waits this long for in-flight requests
        # before the lifespan shutdown closes pools and flushes buffers.
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        "timeout_keep_alive": int(settings.keepalive_timeout_seconds),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,  # client addresses are resolved by our own middleware
        # httptools with a cap on the request head (431) and a deadline to send it (408):
        # see assay.http.server_protocol. The cap is uvicorn's own option for it.
        "http": HTTP_PROTOCOL,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        # Beyond this many connections and in-flight requests, a worker answers 503.
        "limit_concurrency": settings.max_concurrency,
        "lifespan": "on",
        # With several workers, the supervisor replaces a worker that does not answer its
        # health check in time; a worker still importing the model runtimes on a busy
        # machine must not be mistaken for a hung one (uvicorn's default is 5 seconds).
        "timeout_worker_healthcheck": settings.worker_healthcheck_timeout_seconds,
    }


def _configure_protocol(settings: Settings) -> None:
    # Worker processes uvicorn spawns read the same value from the settings themselves.
    BoundedHttpToolsProtocol.header_read_timeout_seconds = settings.header_read_timeout_seconds


def _exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    sys.exit(0)


@contextmanager
def _clean_exit_after_shutdown() -> Iterator[None]:
    """Exit 0 after a graceful shutdown.

    uvicorn drains and closes on SIGTERM, then re-raises the signal to the handler that
    was installed before it started; by default that kills the process with -15,
    which supervisors report as a crash.
    """
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _metrics_shared_by_workers(settings: Settings, *, reload: bool) -> Iterator[None]:
    """With several workers, one directory of metric files and one listener for them all.

    Each worker only knows its own requests, so the listener cannot live in a worker
    (it would report that worker's share): this process, which supervises the workers
    and serves no request, owns it and adds up every worker's files.
    """
    if reload or settings.workers == 1:
        disable_multiprocess_mode()
        yield
        return
    shared = enable_multiprocess_mode()
    listener: MetricsListener | None = None
    try:
        if settings.metrics_port:
            try:
                listener = start_metrics_listener(settings.metrics_host, settings.metrics_port)
            except OSError as exc:
                where = f"{settings.metrics_host}:{settings.metrics_port}"
                msg = f"The metrics listener cannot use {where}: {exc.strerror or exc}."
                raise ServerStartError(msg) from None
        log.info("metrics_shared", workers=settings.workers, directory=str(shared.directory))
        yield
    finally:
        if listener is not None:
            listener.stop()
        shared.close()


def run_factory(settings: Settings, *, reload: bool = False) -> None:
    options = uvicorn_options(settings)
    if reload:
        options.update(reload=True, reload_dirs=["src"])
    else:
        options["workers"] = settings.workers
    _configure_protocol(settings)
    with _metrics_shared_by_workers(settings, reload=reload), _clean_exit_after_shutdown():
        uvicorn.run(APP_FACTORY, factory=True, **options)


def run_app(app: FastAPI, settings: Settings) -> None:
    _configure_protocol(settings)
    with _clean_exit_after_shutdown():
        uvicorn.run(app, **uvicorn_options(settings))
