"""Publishing domain events, and the catalogue of event types consumers may ask for."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.after_commit import after_commit
from assay.core.db_types import utcnow
from assay.core.logging import get_logger
from assay.events.models import Event

log = get_logger("assay.events")

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Published:
    """What a listener hears once the event's transaction has committed."""

    id: uuid.UUID
    org_id: uuid.UUID
    type: str
    created_at: datetime


_BUILT_IN: Final = (
    EventType("job.succeeded", "A job finished; its result is ready."),
    EventType("job.failed", "A job stopped on an error it could not retry past."),
    EventType("job.cancelled", "A job was cancelled; any partial result is kept."),
    EventType("model.version_created", "A new version of a model was registered."),
    EventType("model.alias_moved", "An alias (such as production) now names another version."),
    EventType("model.unhealthy", "A model version failed its health check and was withdrawn."),
)
_types: dict[str, EventType] = {event_type.name: event_type for event_type in _BUILT_IN}
_listeners: dict[str, Callable[[Published], None]] = {}


def register_event_type(name: str, description: str) -> EventType:
    """Add an event type (the extension point packs use, e.g. `threat.verdict_changed`).

    Registering the same name with the same description again is harmless, so a
    pack's import can run more than once; a different description is a conflict.
    """
    if not _TYPE_NAME.fullmatch(name) or len(name) > 100:
        raise ValueError(f"event type {name!r} must be dotted lower-case words")
    existing = _types.get(name)
    if existing is not None and existing.description != description:
        raise ValueError(f"event type {name!r} is already registered differently")
    event_type = EventType(name, description)
    _types[name] = event_type
    return event_type


def event_types() -> Mapping[str, EventType]:
    return MappingProxyType(_types)


def listen(name: str, listener: Callable[[Published], None]) -> None:
    """Be told, after commit, that an event was published in this process.

    A hint for prompt delivery, not a guarantee: events published by another process
    are not heard, so consumers also read the table. Listeners must only hand work
    over (set an asyncio.Event, start a task); they run inside the commit.
    """
    _listeners[name] = listener


def unlisten(name: str) -> None:
    _listeners.pop(name, None)


async def publish(
    db: AsyncSession, *, org_id: uuid.UUID, type: str, data: Mapping[str, Any]
) -> uuid.UUID:
    """Record an event in the caller's transaction; it exists only if that commits."""
    if type not in _types:
        # A programming error, not user input: every type is registered at import.
        raise ValueError(f"unknown event type {type!r}")
    payload = dict(data)
    # Fail at the call site, not at flush time deep inside a commit.
    json.dumps(payload, allow_nan=False)
    event = Event(id=uuid.uuid4(), org_id=org_id, type=type, data=payload, created_at=utcnow())
    db.add(event)
    published = Published(event.id, org_id, type, event.created_at)
    after_commit(db, lambda: _notify(published))
    return event.id


def _notify(published: Published) -> None:
    for name, listener in list(_listeners.items()):
        try:
            listener(published)
        except Exception:  # a listener's bug must not fail the commit it follows
            log.exception("event_listener_failed", listener=name, event_type=published.type)
