"""The mock target in a thread of this process, for the demo, benchmarks and tests."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

import uvicorn

from assay.mock_target.app import create_app

_START_SECONDS = 10.0


@dataclass
class BackgroundTarget:
    """A running mock target: its base URL (`http://127.0.0.1:<port>`), and how to stop it.

    The OpenAI-compatible base URL of a model is `f"{base_url}/vulnerable/v1"` (or
    `refusing`, `flaky`); the request log is at `f"{base_url}/_mock/requests"`.
    """

    base_url: str
    _server: uvicorn.Server
    _thread: threading.Thread
    _socket: socket.socket

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(_START_SECONDS)
        self._socket.close()

    def __enter__(self) -> BackgroundTarget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_background(latency_seconds: float = 0.0) -> BackgroundTarget:
    """Serve the mock target on a free loopback port until `stop()`; raises RuntimeError
    if it does not answer within ten seconds."""
    app = create_app(latency_seconds=latency_seconds)
    # Bound here and handed over, so nothing else takes the port in between.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    # log_config=None: uvicorn's default logging config would run dictConfig, which
    # closes every handler the process has (Assay's own log output included).
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="mock-target", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline and thread.is_alive():
        # The socket is bound already; a connection succeeds once uvicorn listens on it.
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return BackgroundTarget(f"http://127.0.0.1:{port}", server, thread, sock)
        except OSError:
            time.sleep(0.05)  # polling a starting server
    server.should_exit = True
    sock.close()
    msg = "the mock target did not start"
    raise RuntimeError(msg)
