"""A small Server-Sent Events parser (the WHATWG HTML "event stream" interpretation).

Our own rather than `httpx-sse` so the base install stays httpx alone; the format is
small and its rules are all here: lines end in CRLF, LF or CR; a line starting with ``:``
is a comment (Assay's heartbeats); ``field: value`` loses one space after the colon;
``data`` lines join with LF; a blank line dispatches the event; an ``id`` holding NUL is
ignored; the last ``id`` is remembered across events (for ``Last-Event-ID``); ``retry``
is the reconnection delay in milliseconds; an event without data is not dispatched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None
    retry: int | None


class SSEDecoder:
    """Feed text chunks in; get whole events out. Keeps `last_event_id` and `retry`."""

    def __init__(self, last_event_id: str | None = None) -> None:
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self._buffer = ""
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []
        self._started = False

    def feed(self, chunk: str) -> list[ServerSentEvent]:
        """The events completed by `chunk` (which may end mid-line)."""
        if self._pending_cr and chunk.startswith("\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._pending_cr = False
        if not self._started and chunk:
            self._started = True
            chunk = chunk.removeprefix("\ufeff")  # a byte order mark may open the stream
        # Only CR, LF and CRLF end a line (str.splitlines would also split on U+2028...).
        parts = _LINE_END.split(self._buffer + chunk)
        self._buffer = parts.pop()
        if parts and self._buffer == "" and chunk.endswith("\r"):
            self._pending_cr = True
        events: list[ServerSentEvent] = []
        for line in parts:
            dispatched = self._line(line)
            if dispatched is not None:
                events.append(dispatched)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event, self._data
        self._event, self._data = "", []
        if not data:
            return None
        return ServerSentEvent(
            event=event or "message",
            data="\n".join(data),
            id=self.last_event_id,
            retry=self.retry,
        )
