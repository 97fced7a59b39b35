"""What the mock target's routes share: the modes, the simulated latency, the flaky
endpoint's count and the request log."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# The log is for tests and demos; a long benchmark must not grow it without bound.
REQUEST_LOG_LIMIT = 10_000


class Mode(StrEnum):
    """How a mock model behaves; the first segment of its routes."""

    VULNERABLE = "vulnerable"
    REFUSING = "refusing"
    FLAKY = "flaky"  # every second request rate-limited, the others as VULNERABLE


@dataclass(frozen=True)
class RecordedRequest:
    """One request the mock received. The credential is never kept."""

    mode: str
    path: str
    prompt: str | None  # the last user message as received; None when the body was invalid
    has_system: bool
    status: int


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
class TargetState:
    """The options the mock target was started with, its counters and its request log."""

    latency_seconds: float = 0.0
    log: RequestLog = field(default_factory=RequestLog)
    _flaky_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def flaky_turn_is_limited(self) -> bool:
        """Count one request to the flaky model; whether it is an even one (rate-limited)."""
        with self._lock:
            self._flaky_requests += 1
            return self._flaky_requests % 2 == 0
