"""Prometheus metrics, their exposition, and the separate loopback listener.

One process (tests, `assay serve` with one worker) keeps its metrics in memory and
exposes prometheus_client's default registry. With several workers, `assay serve`
switches prometheus_client to its multiprocess mode before the workers start: every
worker writes its values to memory-mapped files in one directory, and every exposition
(the listener, which the supervising process then owns, and `GET /metrics`) adds up
the files of all workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import platform
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from assay import __version__
from assay.core.logging import get_logger

# prometheus_client's own switch: it reads this variable when it is imported, so it
# must be set before the worker processes start (see `enable_multiprocess_mode`).
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How often each worker copies its pool state into the shared files.
POOL_SAMPLE_SECONDS = 5.0

log = get_logger("assay.metrics")

HTTP_REQUESTS = Counter(
    "assay_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "assay_http_request_duration_seconds",
    "Time from receiving a request to sending its last byte.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_IN_FLIGHT = Gauge(
    "assay_http_requests_in_flight",
    "Requests being handled now.",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "assay_rate_limited_requests",
    "Requests refused with 429 by a rate limit or quota, by rate-limit class.",
    ["rate_class"],
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "assay_rate_limit_storage_errors",
    "Rate-limit decisions made without the storage (Redis unreachable), by class and by "
    "whether the request was let through (open) or refused (closed).",
    ["rate_class", "decision"],
)


def multiprocess_directory() -> str | None:
    """The directory of the shared metric files, when this process runs as a worker."""
    return os.environ.get(MULTIPROCESS_DIR_ENV)


class _BuildInfoCollector(Collector):
    """assay_build_info; a collector because Info metrics do not work across processes."""

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily(
            "assay_build",
            "Version of the running Assay build.",
            value={"version": __version__, "python": platform.python_version()},
        )


_POOL_METRICS = {
    "assay_db_pool_size": "Configured connections in the pool.",
    "assay_db_pool_checked_out": "Connections in use.",
    "assay_db_pool_overflow": "Connections open above the pool size.",
    "assay_db_pool_idle": "Connections open and idle.",
}


class _PoolCollector(Collector):
    """Reads the live pools at scrape time, so nothing is counted on the hot path."""

    def __init__(self) -> None:
        self._engines: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()

    def track(self, engine: AsyncEngine) -> None:
        self._engines.add(engine)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            name: GaugeMetricFamily(name, text, labels=["dialect"])
            for name, text in _POOL_METRICS.items()
        }
        for engine in list(self._engines):
            pool = engine.sync_engine.pool
            dialect = engine.dialect.name
            if isinstance(pool, QueuePool):
                families["assay_db_pool_size"].add_metric([dialect], pool.size())
                families["assay_db_pool_checked_out"].add_metric([dialect], pool.checkedout())
                families["assay_db_pool_overflow"].add_metric([dialect], max(pool.overflow(), 0))
                families["assay_db_pool_idle"].add_metric([dialect], pool.checkedin())
        yield from families.values()


POOL_COLLECTOR = _PoolCollector()
BUILD_INFO = _BuildInfoCollector()
REGISTRY.register(POOL_COLLECTOR)
REGISTRY.register(BUILD_INFO)

# In multiprocess mode a worker's pool can only be seen through the files: these gauges
# carry it there (summed over live workers). Never registered in the default registry,
# where the collector above reports the same names.
_SHARED_POOL_GAUGES = {
    name: Gauge(name, text, ["dialect"], multiprocess_mode="livesum", registry=None)
    for name, text in _POOL_METRICS.items()
}


def sample_pools_into_shared_files() -> None:
    for family in POOL_COLLECTOR.collect():
        gauge = _SHARED_POOL_GAUGES[family.name]
        for sample in family.samples:
            gauge.labels(**sample.labels).set(sample.value)


async def share_pool_state(interval_seconds: float = POOL_SAMPLE_SECONDS) -> None:
    """Worker task in multiprocess mode: keep this worker's pool gauges current."""
    while True:
        try:
            sample_pools_into_shared_files()
        except Exception:  # a gauge left stale must not stop the worker
            log.warning("pool_metrics_not_shared", exc_info=True)
        await asyncio.sleep(interval_seconds)


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _LiveWorkersCollector(multiprocess.MultiProcessCollector):
    """Adds up the workers' files, first dropping the live gauges of workers that died.

    A worker that stops cleanly removes its own (`mark_worker_stopped`); one that was
    killed cannot, and its in-flight and pool gauges would otherwise count forever.
    """

    def __init__(self, directory: str) -> None:
        super().__init__(None, path=directory)  # type: ignore[no-untyped-call]
        self._directory = directory

    def collect(self) -> Iterable[Metric]:
        for path in glob.glob(os.path.join(self._directory, "gauge_live*_*.db")):
            match = _LIVE_GAUGE_FILE.match(os.path.basename(path))
            if match and not _process_alive(int(match.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
        return super().collect()  # type: ignore[no-untyped-call, no-any-return]


@lru_cache(maxsize=4)
def _multiprocess_registry(directory: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_LiveWorkersCollector(directory))
    registry.register(BUILD_INFO)
    return registry


def exposition_registry() -> CollectorRegistry:
    """What /metrics and the listener expose: every worker's metrics, or this process's."""
    directory = multiprocess_directory()
    return REGISTRY if directory is None else _multiprocess_registry(directory)


def mark_worker_stopped() -> None:
    """Remove this worker's live gauges (in flight, pools) from the shared files."""
    directory = multiprocess_directory()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


@dataclass
class MultiprocessMetrics:
    """The shared directory `assay serve` made for its workers; `close` removes it."""

    directory: Path
    previous: str | None

    def close(self) -> None:
        if self.previous is None:
            os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        else:
            os.environ[MULTIPROCESS_DIR_ENV] = self.previous
        shutil.rmtree(self.directory, ignore_errors=True)


def enable_multiprocess_mode() -> MultiprocessMetrics:
    """Give the workers about to start a fresh, private directory for their metric files.

    Fresh on every start, as prometheus_client requires: files left by an earlier run
    would be added to this run's counts.
    """
    directory = Path(tempfile.mkdtemp(prefix="assay-metrics-"))  # mode 0700
    previous = os.environ.get(MULTIPROCESS_DIR_ENV)
    os.environ[MULTIPROCESS_DIR_ENV] = str(directory)
    return MultiprocessMetrics(directory=directory, previous=previous)


def disable_multiprocess_mode() -> None:
    """One process serves alone: expose its own registry, not a directory it inherited."""
    os.environ.pop(MULTIPROCESS_DIR_ENV, None)


@dataclass
class MetricsListener:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_listener(host: str, port: int) -> MetricsListener:
    """Serve /metrics on its own socket, in a daemon thread, off the event loop."""
    server, thread = start_http_server(port, addr=host, registry=exposition_registry())
    return MetricsListener(server=server, thread=thread)
