"""uvicorn's httptools protocol with bounds on the request head and deadlines on slow clients.

uvicorn enforces `h11_max_incomplete_event_size` only with the slower h11 parser; with
httptools (what `uvicorn[standard]` selects) a request head may be any size, and a
client may trickle a head or a body forever (uvicorn arms no timer while a request is
being read). This subclass keeps httptools' speed and adds:

- the request line plus headers may not exceed the configured size (431, then close):
  measured as the parser hands them over, and on the raw bytes while a head is still
  incomplete, since httptools buffers an unfinished header line without limit;
- a new connection, and each request once its first byte has arrived, must deliver its
  complete head within `header_read_timeout_seconds` (408, then close);
- once the head is in, the body may not stall: no byte of it for
  `body_read_timeout_seconds` gets a 408 (then close). Time the application spends not
  reading (uvicorn has paused the socket) does not count against the client.

The answers the server writes itself (400 for an unparsable request, 408, 431, and the
503 past `max_concurrency`) are problem documents with the same static security
headers as the application's (`STATIC_HEADERS`, the API policy, `no-store`; HSTS on TLS
connections), since they never pass through the application's middleware.

The head size comes from uvicorn's own `h11_max_incomplete_event_size` option (same
meaning). `assay.server` sets the head deadline before serving; everything else, and the
head deadline in worker processes uvicorn spawns, is read from the settings.
"""

from __future__ import annotations

import asyncio
import json
from asyncio.events import TimerHandle
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from assay.core.errors import PROBLEM_TYPE_PREFIX
from assay.http.problems import PROBLEM_CONTENT_TYPE
from assay.http.security_headers import API_CSP, STATIC_HEADERS, hsts_value
from assay.settings import Settings, load_settings

DEFAULT_MAX_HEAD_BYTES = 16 * 1024
# Separators around the request line and each header, which the parser does not pass on.
_LINE_OVERHEAD = 4
OVERLOAD_RETRY_AFTER_SECONDS = 1


class RequestHeadTooLarge(Exception):
    """Raised from a parser callback to abort the parse; answered with 431."""


def raw_security_headers(hsts: str | None) -> list[tuple[bytes, bytes]]:
    """The headers every response of ours carries, for answers written by the server."""
    headers = [
        *STATIC_HEADERS,
        ("content-security-policy", API_CSP),
        ("cache-control", "no-store"),
    ]
    if hsts is not None:
        headers.append(("strict-transport-security", hsts))
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def problem_bytes(status: int, slug: str, title: str, detail: str) -> bytes:
    return json.dumps(
        {
            "type": PROBLEM_TYPE_PREFIX + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": None,
            "request_id": None,
        }
    ).encode()


def raw_problem(
    status: int,
    phrase: str,
    slug: str,
    detail: str,
    security_headers: list[tuple[bytes, bytes]],
) -> bytes:
    """A complete HTTP/1.1 problem response that closes the connection."""
    body = problem_bytes(status, slug, phrase, detail)
    head = [
        f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1"),
        f"content-type: {PROBLEM_CONTENT_TYPE}\r\n".encode("latin-1"),
        f"content-length: {len(body)}\r\n".encode("latin-1"),
        b"connection: close\r\n",
    ]
    head.extend(name + b": " + value + b"\r\n" for name, value in security_headers)
    return b"".join(head) + b"\r\n" + body


@dataclass(frozen=True, slots=True)
class ServerAnswers:
    """What the server writes on its own, built once per scheme (HSTS only over TLS)."""

    bad_request: bytes
    head_too_large: bytes
    head_timeout: bytes
    body_timeout: bytes
    overloaded_headers: list[tuple[bytes, bytes]]
    overloaded_body: bytes

    @classmethod
    def build(cls, hsts: str | None) -> ServerAnswers:
        security = raw_security_headers(hsts)
        overloaded_body = problem_bytes(
            503,
            "service-unavailable",
            "Service Unavailable",
            "The server is handling as many requests as it accepts; retry shortly.",
        )
        return cls(
            bad_request=raw_problem(
                400, "Bad Request", "bad-request", "The request is not valid HTTP.", security
            ),
            head_too_large=raw_problem(
                431,
                "Request Header Fields Too Large",
                "request-header-fields-too-large",
                "The request line and headers are larger than this server accepts.",
                security,
            ),
            head_timeout=raw_problem(
                408,
                "Request Timeout",
                "request-timeout",
                "The request headers did not arrive in time.",
                security,
            ),
            body_timeout=raw_problem(
                408,
                "Request Timeout",
                "request-timeout",
                "The request body stopped arriving.",
                security,
            ),
            overloaded_headers=[
                (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                (b"content-length", str(len(overloaded_body)).encode()),
                (b"connection", b"close"),
                (b"retry-after", str(OVERLOAD_RETRY_AFTER_SECONDS).encode()),
                *security,
            ],
            overloaded_body=overloaded_body,
        )


@dataclass(frozen=True, slots=True)
class ProtocolSettings:
    head_timeout: float
    body_timeout: float
    plain: ServerAnswers
    tls: ServerAnswers

    @classmethod
    def from_settings(cls, settings: Settings, head_timeout: float | None) -> ProtocolSettings:
        hsts = hsts_value(settings.hsts_max_age_seconds, settings.hsts_preload)
        return cls(
            head_timeout=(
                settings.header_read_timeout_seconds if head_timeout is None else head_timeout
            ),
            body_timeout=settings.body_read_timeout_seconds,
            plain=ServerAnswers.build(None),
            tls=ServerAnswers.build(hsts),
        )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    # Set by assay.server before serving; None in worker processes, which read settings.
    header_read_timeout_seconds: ClassVar[float | None] = None
    _configured: ClassVar[ProtocolSettings | None] = None

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        configured = self.configured()
        self.max_head_bytes = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self.head_timeout = configured.head_timeout
        self.body_timeout = configured.body_timeout
        self.answers = configured.plain
        self.tls_answers = configured.tls
        self.head_bytes = 0
        self.parsed_head_bytes = 0
        self.head_too_large = False
        self.reading_head = True  # a new connection owes us a request head
        self.head_deadline: TimerHandle | None = None
        self.reading_body = False  # between a request's head and the end of its body
        self.body_deadline: TimerHandle | None = None
        self.body_activity_at = 0.0

    @classmethod
    def configured(cls) -> ProtocolSettings:
        configured = cls._configured
        if configured is None or (
            cls.header_read_timeout_seconds is not None
            and configured.head_timeout != cls.header_read_timeout_seconds
        ):
            configured = ProtocolSettings.from_settings(
                load_settings(), cls.header_read_timeout_seconds
            )
            cls._configured = configured
        return configured

    @classmethod
    def configured_head_timeout(cls) -> float:
        return cls.configured().head_timeout

    # --- connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.scheme == "https":
            self.answers = self.tls_answers
        self._arm_head_deadline()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        super().connection_lost(exc)

    def _close_with(self, answer: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    # --- head deadline ---------------------------------------------------------------------
    def _arm_head_deadline(self) -> None:
        if self.head_deadline is None:
            self.head_deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_timed_out(self) -> None:
        self.head_deadline = None
        self._close_with(self.answers.head_timeout)

    # --- body deadline ---------------------------------------------------------------------
    # Armed only when a chunk of data ends inside a body, so a request whose body arrives
    # with its head (the usual case) costs two attribute writes. Each chunk moves the
    # deadline by recording the time; the timer re-arms itself for the rest of the wait
    # instead of being cancelled and recreated per chunk.
    def _arm_body_deadline(self) -> None:
        self.body_activity_at = self.loop.time()
        if self.body_deadline is None:
            self.body_deadline = self.loop.call_later(self.body_timeout, self._body_timed_out)

    def _disarm_body_deadline(self) -> None:
        if self.body_deadline is not None:
            self.body_deadline.cancel()
            self.body_deadline = None

    def _body_timed_out(self) -> None:
        self.body_deadline = None
        if (
            not self.reading_body
            or self.transport.is_closing()
            or self.transport.get_protocol() is not self  # upgraded to another protocol
        ):
            return
        now = self.loop.time()
        if self.flow.read_paused:
            # uvicorn stopped reading because the application has not consumed what
            # arrived: the wait is ours, not the client's.
            self.body_activity_at = now
        idle = now - self.body_activity_at
        if idle < self.body_timeout:
            self.body_deadline = self.loop.call_later(
                self.body_timeout - idle, self._body_timed_out
            )
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started:
            self.transport.close()  # answered already (without reading the body)
            return
        self._close_with(self.answers.body_timeout)

    # --- head size -----------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        reading_head = self.reading_head
        if reading_head:
            self.head_bytes += len(data)
        super().data_received(data)
        # Still inside the head after this chunk: every byte since the request began
        # belongs to it (httptools buffers an unfinished header line without limit).
        if (
            reading_head
            and self.reading_head
            and self.head_bytes > self.max_head_bytes
            and not self.transport.is_closing()
        ):
            self._answer_head_too_large()
        elif self.reading_body:
            self._arm_body_deadline()

    def _answer_head_too_large(self) -> None:
        self._disarm_head_deadline()
        self._close_with(self.answers.head_too_large)

    def _count_parsed(self, size: int) -> None:
        # A head that arrived whole in one chunk is measured here, as it is parsed.
        self.parsed_head_bytes += size
        if self.parsed_head_bytes > self.max_head_bytes:
            self.head_too_large = True
            raise RequestHeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url) + _LINE_OVERHEAD)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_parsed(len(name) + len(value) + _LINE_OVERHEAD)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to any parse failure, the one RequestHeadTooLarge causes too.
        if self.head_too_large:
            self._answer_head_too_large()
            return
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        self.reading_body = False
        self._close_with(self.answers.bad_request)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.parsed_head_bytes = 0
        self.reading_head = True
        self._arm_head_deadline()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # Whatever arrives next on this connection is the next request's head.
        self.reading_head = True
        self.reading_body = False
        if self.body_deadline is not None:
            self._disarm_body_deadline()

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.head_bytes = 0
        self._disarm_head_deadline()
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            self._start_overloaded_answer(limit)
        else:
            super().on_headers_complete()
        self.reading_body = True

    def _start_overloaded_answer(self, limit: int) -> None:
        # uvicorn answers plain text from a module-level app; the same decision, with our
        # problem document and headers instead.
        self.logger.warning("Exceeded concurrency limit.")
        answers = self.answers

        async def overloaded(scope: Scope, receive: Receive, send: Send) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": answers.overloaded_headers,
                }
            )
            await send({"type": "http.response.body", "body": answers.overloaded_body})

        app = self.app
        self.app = overloaded
        self.limit_concurrency = None
        try:
            super().on_headers_complete()
        finally:
            self.app = app
            self.limit_concurrency = limit
