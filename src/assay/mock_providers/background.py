"""The mock providers in a thread of this process, for `assay serve --demo`."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from assay.mock_providers.app import PREFIXES, create_app

_START_SECONDS = 10.0


@dataclass
class BackgroundMock:
    """A running mock: its base URL per provider, and how to stop it."""

    base_urls: dict[str, str]
    _server: uvicorn.Server
    _thread: threading.Thread
    _socket: socket.socket

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(_START_SECONDS)
        self._socket.close()


def serve_in_background() -> BackgroundMock:
    """Serve the shipped data set on a free loopback port until `stop()`; raises
    RuntimeError if it does not answer within ten seconds."""
    app = create_app()
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
        target=server.run, kwargs={"sockets": [sock]}, name="mock-providers", daemon=True
    )
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline and thread.is_alive():
        # The socket is bound already; a connection succeeds once uvicorn listens on it.
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                urls = {name: base + prefix for name, prefix in PREFIXES.items()}
                return BackgroundMock(urls, server, thread, sock)
        except OSError:
            time.sleep(0.05)  # polling a starting server
    server.should_exit = True
    sock.close()
    msg = "the mock providers did not start"
    raise RuntimeError(msg)
