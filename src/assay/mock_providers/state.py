"""What the three mock providers share: the data set, the timing options and the request log."""

from __future__ import annotations

import threading
from asyncio import sleep
from collections import deque
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from starlette.requests import Request

from assay.mock_providers.dataset import Behaviour, Dataset, Indicator

# The log is for tests and demos; a long benchmark must not grow it without bound.
REQUEST_LOG_LIMIT = 10_000


class Credential(StrEnum):
    """What a request's credential header held."""

    MISSING = "missing"
    REJECTED = "rejected"  # the data set's `rejected_key`: a wrong or revoked key
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class RecordedRequest:
    """One request a mock provider received. The credential's value is never kept."""

    provider: str
    method: str
    path: str
    indicator: str | None
    credential_present: bool


class RequestLog:
    """The requests received, oldest first; safe to read from another thread."""

    def __init__(self, limit: int = REQUEST_LOG_LIMIT) -> None:
        self._entries: deque[RecordedRequest] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """The recorded requests as JSON-ready mappings."""
        with self._lock:
            return [asdict(entry) for entry in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class MockState:
    """The options a mock server was started with, and its request log."""

    dataset: Dataset
    latency_seconds: float = 0.0
    slow_seconds: float = 5.0
    log: RequestLog = field(default_factory=RequestLog)

    async def receive(
        self,
        request: Request,
        *,
        provider: str,
        credential_header: str,
        indicator: str | None,
    ) -> Credential:
        """Record REQUEST and wait the global latency; what its credential header held."""
        credential = request.headers.get(credential_header, "").strip()
        self.log.record(
            RecordedRequest(
                provider=provider,
                method=request.method,
                path=request.url.path,
                indicator=indicator,
                credential_present=bool(credential),
            )
        )
        if self.latency_seconds > 0:
            await sleep(self.latency_seconds)
        if not credential:
            return Credential.MISSING
        if credential == self.dataset.rejected_key:
            return Credential.REJECTED
        return Credential.ACCEPTED

    async def behave(self, indicator: Indicator | None) -> Behaviour:
        """How to answer about INDICATOR; a slow one has been waited for on return."""
        behaviour = Behaviour.NORMAL if indicator is None else indicator.behaviour
        if behaviour is Behaviour.SLOW:
            await sleep(self.slow_seconds)
        return behaviour
