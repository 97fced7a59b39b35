"""Structured logging: JSON in production, readable lines in development.

Every record, ours or a library's, passes the same processors, which drop the values
of sensitive keys and escape control characters so a client cannot forge log lines.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import Token
from functools import lru_cache
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from assay.settings import Settings

REDACTED = "[redacted]"
_SENSITIVE_KEY = re.compile(
    r"pass(word|phrase)?|secret|token|authori[sz]ation|api[_-]?key|cookie|credential|"
    r"\bdsn\b|signature|private[_-]?key|encryption[_-]?key|signing[_-]?key|pepper",
    re.IGNORECASE,
)
# C0 controls, DEL and C1 controls become visible escapes.
_CONTROL_CHARS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_HANDLER_MARK = "_assay_handler"


# Every request writes an access line, so the two processors below are on the hot path:
# key names repeat, so their verdicts are cached, and plain values skip the walk.
_SCALARS = (str, int, float, bool, type(None))


@lru_cache(maxsize=4096)
def _is_sensitive(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 5 or isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _is_sensitive(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, depth + 1) for v in value]
    return value


def redact_sensitive_values(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in list(event_dict):
        if key == "event":
            continue
        if _is_sensitive(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key])
    return event_dict


# Tracebacks keep their line breaks and tabs: the JSON renderer escapes them anyway, and
# the console renderer prints a traceback as the block of lines it is. Every other
# control character in them is escaped like anywhere else.
_MULTILINE_KEYS = frozenset({"exception", "stack"})
_CONTROL_CHARS_BUT_LINES = {c: e for c, e in _CONTROL_CHARS.items() if c not in (0x09, 0x0A)}


def escape_control_characters(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        # isprintable() is False for every character the table escapes (C0, DEL, C1).
        if isinstance(value, str) and not value.isprintable():
            table = _CONTROL_CHARS_BUT_LINES if key in _MULTILINE_KEYS else _CONTROL_CHARS
            event_dict[key] = value.translate(table)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_sensitive_values,
        escape_control_characters,
    ]


class _CurrentStdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is at the time of the record, not at set-up.

    Test runners and embedding applications swap stdout; a handler holding the old,
    closed stream would fail every later write.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route structlog and the standard library through one handler (stdout by default)."""
    renderer: Processor
    if settings.effective_log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream) if stream else _CurrentStdoutHandler()
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    # Replace only our own handler, so test harnesses and operators can add theirs.
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            root.removeHandler(existing)
    root.addHandler(handler)
    level = "DEBUG" if settings.debug else settings.log_level
    root.setLevel(level)
    # We write one access line per request ourselves; uvicorn's would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    migration_log = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, _AlembicChatter) for f in migration_log.filters):
        migration_log.addFilter(_AlembicChatter())


class _AlembicChatter(logging.Filter):
    """Drop Alembic's per-connection chatter ("Context impl SQLiteImpl.", "Will assume
    non-transactional DDL."); its "Running upgrade a -> b" lines say what changed, so
    they stay."""

    _NOISE = ("Context impl ", "Will assume ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._NOISE)


_ACCESS_STAMPER = structlog.processors.TimeStamper(fmt="iso", utc=True)


class AccessLog:
    """Writes the one line per request, without structlog's general processor chain.

    Every request writes one, so it is on the hot path. Its fields are all ours and
    bounded (a route template, a validated request id and client address, numbers,
    principal and organisation ids): redaction and control-character escaping have
    nothing to do on them, and skipping them, the bound-logger machinery and the
    context-variable merge makes the line about three times cheaper. The record still
    goes through the standard library's handlers and our formatter, so levels,
    operators' handlers and renderers treat it like any other line.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger = logging.getLogger(name)

    def write(self, level: int, event_dict: dict[str, Any]) -> None:
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        level_name = logging.getLevelName(level).lower()
        event_dict["event"] = "request"
        event_dict["logger"] = self.name
        event_dict["level"] = level_name
        _ACCESS_STAMPER(None, level_name, event_dict)
        record = logger.makeRecord(self.name, level, "", 0, event_dict, (), None)
        # What structlog's wrap_for_formatter attaches: ProcessorFormatter then renders
        # the dict as it is, without the foreign pre-chain.
        record._logger = logger
        record._name = level_name
        logger.handle(record)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return cast(structlog.stdlib.BoundLogger, structlog.get_logger(name))


def bind_request_context(values: MutableMapping[str, Any]) -> Mapping[str, Token[Any]]:
    """Bind `values` to every log line of this request; returns what `reset_request_context`
    needs to put the previous values back."""
    return structlog.contextvars.bind_contextvars(**values)


def reset_request_context(tokens: Mapping[str, Token[Any]]) -> None:
    # Only what this request bound is undone: cheaper than clearing every context
    # variable, and the caller's own context (an embedding test, say) is left as it was.
    structlog.contextvars.reset_contextvars(**tokens)
