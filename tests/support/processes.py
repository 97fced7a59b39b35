"""Real Assay processes for tests: start, wait until ready, signal, and always clean up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 30.0
EXIT_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    application_name: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def sigterm(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, within: float = EXIT_TIMEOUT) -> int:
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the process did not exit within {within}s:\n{self.log()}")

    def kill(self) -> None:
        # The whole process group: `assay serve --workers N` has worker processes that a
        # kill of the parent alone would leave running.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        # Killed outright, `assay serve` could not remove its shared metrics directory.
        for line in self.log().splitlines():
            if line.startswith("{") and '"metrics_shared"' in line:
                shutil.rmtree(json.loads(line)["directory"], ignore_errors=True)


def spawn(
    command: list[str], env: dict[str, str], *, cwd: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            command,
            env=env,
            cwd=cwd,  # no stray .env file is picked up
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole at teardown
        )


async def wait_until_ready(server: ServerProcess, within: float = START_TIMEOUT) -> None:
    """Poll /readyz until it answers 200; fail with the server's log if it never does."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"the server exited with {server.process.returncode}:\n{server.log()}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"/readyz did not answer 200 within {within}s:\n{server.log()}")


async def refused(port: int) -> bool:
    """Whether a connection to the port is refused (nothing listens there any more)."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False
