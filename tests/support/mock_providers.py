"""The mock threat-intelligence providers on a loopback port, in this process, for tests.

    def test_lookup(mock_providers: RunningMockProviders) -> None:
        ...  # point the providers at mock_providers.virustotal_url etc.
        assert mock_providers.requests()[0]["provider"] == "virustotal"

Or, with options, `with running_mock_providers(latency_ms=20) as mock: ...`. The server
runs in a thread of its own (its own event loop), so a test's loop never serves it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from assay.mock_providers.app import PREFIXES, create_app
from assay.mock_providers.dataset import Dataset
from assay.mock_providers.state import MockState

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# Short, so that a test of the slow indicators is quick; ask for more when it matters.
TEST_SLOW_SECONDS = 0.2


@dataclass(frozen=True)
class RunningMockProviders:
    """A running mock: the base URL of each provider, and its request log."""

    base_url: str
    state: MockState

    @property
    def virustotal_url(self) -> str:
        return self.base_url + PREFIXES["virustotal"]

    @property
    def abuseipdb_url(self) -> str:
        return self.base_url + PREFIXES["abuseipdb"]

    @property
    def urlhaus_url(self) -> str:
        return self.base_url + PREFIXES["urlhaus"]

    def requests(self) -> list[dict[str, Any]]:
        """Every request received since the start or the last `reset()`, oldest first:
        provider, method, path, indicator, credential_present."""
        return self.state.log.entries()

    def reset(self) -> None:
        """Forget the requests received so far."""
        self.state.log.clear()


def _wait_until_answering(base_url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=base_url, timeout=1) as http:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                pytest.fail("the mock providers' server stopped while starting")
            with contextlib.suppress(httpx.TransportError):
                if http.get("/_mock/requests").status_code == 200:
                    return
            time.sleep(0.02)  # a poll's interval, not a wait for readiness
    pytest.fail(f"the mock providers did not answer within {START_TIMEOUT}s")


@contextlib.contextmanager
def running_mock_providers(
    dataset: Dataset | None = None,
    *,
    latency_ms: float = 0,
    slow_seconds: float = TEST_SLOW_SECONDS,
) -> Iterator[RunningMockProviders]:
    """Serve the mock providers on a free loopback port until the block ends."""
    app = create_app(dataset, latency_ms=latency_ms, slow_seconds=slow_seconds)
    # The socket is bound here and handed over: no other process can take the port between
    # choosing it and listening on it.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="mock-providers", daemon=True
    )
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(base_url, thread)
        yield RunningMockProviders(base_url=base_url, state=app.state.mock)
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        sock.close()


@pytest.fixture
def mock_providers() -> Iterator[RunningMockProviders]:
    """The mock providers with the shipped data set, on a free loopback port."""
    with running_mock_providers() as running:
        yield running
