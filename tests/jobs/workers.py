"""Real `assay worker` processes for the scale-out tests: started with the test's settings,
their log kept in a file the test reads, stopped (or killed) by the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assay.settings import Settings

ASSAY = Path(sys.executable).parent / "assay"


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives a worker the test app's settings (its secrets too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    values: dict[str, Any] = {
        "env": settings.env.value,
        "data_dir": settings.data_dir,
        "database_url": settings.database_url,
        "jobs_broker": settings.jobs_broker,
        "jobs_queue": settings.jobs_queue,
        "jobs_chunk_rows": settings.jobs_chunk_rows,
        "jobs_checkpoint_rows": settings.jobs_checkpoint_rows,
        "jobs_lease_seconds": settings.jobs_lease_seconds,
        "jobs_retry_base_seconds": settings.jobs_retry_base_seconds,
        "metrics_port": 0,
        "log_format": "json",
        "shutdown_grace_seconds": 10,
        # Scans reach the mock targets on loopback only when the test opened it.
        "outbound_allowed_networks": json.dumps(settings.outbound_allowed_networks),
    }
    for name in ("token_signing_key", "session_secret", "encryption_key"):
        secret = getattr(settings, name)
        if secret is not None:
            values[name] = secret.get_secret_value()
    env.update({f"ASSAY_{k.upper()}": str(v) for k, v in values.items() if v is not None})
    return env


class Worker:
    def __init__(self, settings: Settings, log_path: Path, concurrency: int) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(ASSAY), "worker", "--concurrency", str(concurrency)],
            env=worker_environment(settings),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if f'"{name}"' in line:
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def wait_ready(self) -> None:
        """Bounded polling of the log for the worker's ready line."""
        for _ in range(600):
            if self.events("worker_ready"):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"worker never ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()
        return int(self.process.returncode)


@contextmanager
def workers(settings: Settings, directory: Path) -> Iterator[list[Worker]]:
    """A list the test adds workers to (`start_worker`); every one is stopped on exit."""
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def start_worker(
    started: list[Worker], settings: Settings, directory: Path, concurrency: int = 2
) -> Worker:
    worker = Worker(settings, directory / f"worker-{len(started)}.log", concurrency)
    started.append(worker)
    worker.wait_ready()
    return worker
