"""Forwarding sealed audit events to a SIEM: JSON lines to stdout, syslog or an HTTP sink.

Events are forwarded by the process that sealed them, right after the sealing
transaction commits: every event is sealed exactly once, by one process, so every event
is forwarded once — in chain order within a chain, with its `seq` and `hash`, so the SIEM
can see a gap. A sink that fails keeps the lines in a bounded buffer for the next batch
(counted, and past the bound the oldest are dropped and counted); the trail in the
database stays the record of truth, forwarding is a copy.
"""

from __future__ import annotations

import json
import socket
import sys
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import Counter

from assay.core.logging import get_logger
from assay.outbound.errors import DestinationRefused, OutboundFailed
from assay.outbound.service import OutboundClient
from assay.settings import Settings

log = get_logger("assay.audit_trail")

FORWARDED = Counter(
    "assay_audit_forwarded", "Audit events forwarded to the SIEM sink, by outcome.", ["outcome"]
)
# Lines kept for a sink that is down, at most; older ones are dropped (and counted).
MAX_BACKLOG = 10_000
# RFC 5424: facility 13 (log audit), severity 6 (informational).
_SYSLOG_PRIORITY = 13 * 8 + 6


class SinkFailed(Exception):
    """The sink did not take the lines; the message says why."""


class Sink(Protocol):
    async def send(self, lines: Sequence[str]) -> None: ...


class StdoutSink:
    """One JSON line per event on standard output (a log shipper picks them up)."""

    async def send(self, lines: Sequence[str]) -> None:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()


class SyslogSink:
    """One RFC 5424 message per event over UDP, the JSON line as its message."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._hostname = socket.gethostname()[:255] or "-"

    async def send(self, lines: Sequence[str]) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in lines:
                message = f"<{_SYSLOG_PRIORITY}>1 {stamp} {self._hostname} assay - audit - {line}"
                try:
                    sock.sendto(message.encode(), self.address)
                except OSError as exc:
                    raise SinkFailed(f"syslog: {type(exc).__name__}") from None


class HttpSink:
    """The batch as one `application/x-ndjson` POST, through the outbound guard."""

    def __init__(self, url: str, token: str | None, outbound: OutboundClient) -> None:
        self.url = url
        self.token = token
        self.outbound = outbound

    async def send(self, lines: Sequence[str]) -> None:
        headers = {"content-type": "application/x-ndjson"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        body = "".join(line + "\n" for line in lines).encode()
        try:
            response = await self.outbound.request("POST", self.url, content=body, headers=headers)
        except DestinationRefused as exc:
            raise SinkFailed(f"the sink's address is refused: {exc.detail}") from None
        except OutboundFailed as exc:
            raise SinkFailed(f"{exc.reason}: {exc.detail}") from None
        if not 200 <= response.status_code < 300:
            raise SinkFailed(f"the sink answered {response.status_code}")


class AuditForwarder:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._backlog: deque[str] = deque()

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    async def forward(self, events: Sequence[dict[str, Any]]) -> None:
        """Send `events` (after anything a failed sink still owes); never raises."""
        for event in events:
            self._backlog.append(
                json.dumps({"type": "assay.audit_event", **event}, separators=(",", ":"))
            )
        overflow = len(self._backlog) - MAX_BACKLOG
        for _ in range(max(0, overflow)):
            self._backlog.popleft()
        if overflow > 0:
            FORWARDED.labels("dropped").inc(overflow)
        if not self._backlog:
            return
        lines = list(self._backlog)
        try:
            await self.sink.send(lines)
        except SinkFailed as exc:
            FORWARDED.labels("failed").inc(len(lines))
            log.warning("audit_forwarding_failed", reason=str(exc), waiting=len(lines))
            return
        for _ in lines:
            self._backlog.popleft()
        FORWARDED.labels("sent").inc(len(lines))


def build_forwarder(settings: Settings, outbound: OutboundClient) -> AuditForwarder | None:
    """The sink the settings name, or None when forwarding is off."""
    kind = settings.audit_forward
    if kind == "stdout":
        return AuditForwarder(StdoutSink())
    if kind == "syslog":
        host, _, port = settings.audit_forward_syslog_address.rpartition(":")
        return AuditForwarder(SyslogSink(host, int(port)))
    if kind == "http":
        token = settings.audit_forward_token
        url = str(settings.audit_forward_url)
        return AuditForwarder(
            HttpSink(url, token.get_secret_value() if token is not None else None, outbound)
        )
    return None
