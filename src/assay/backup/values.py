"""Column values as JSON, and back, without losing a type.

Anything JSON has no type for is tagged: `{"$bytes": base64}`, `{"$datetime": iso}`,
`{"$uuid": text}`, `{"$decimal": text}`, `{"$date": iso}`. A JSON column's value is
wrapped as `{"$json": value}` so that a document which happens to hold a key such as
"$bytes" is never mistaken for a tag.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON

_TAGGED: tuple[tuple[type[Any] | tuple[type[Any], ...], str, Callable[[Any], str]], ...] = (
    ((bytes, bytearray, memoryview), "$bytes", lambda v: base64.b64encode(bytes(v)).decode()),
    (dt.datetime, "$datetime", lambda v: v.isoformat()),
    (dt.date, "$date", lambda v: v.isoformat()),
    (uuid.UUID, "$uuid", str),
    (Decimal, "$decimal", str),
)
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$json": lambda raw: raw,
    "$bytes": lambda raw: base64.b64decode(raw, validate=True),
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$uuid": uuid.UUID,
    "$decimal": Decimal,
}


def encode(value: Any, column_type: object) -> Any:
    if value is None:
        return None
    if isinstance(column_type, JSON):
        return {"$json": value}
    if isinstance(value, bool | int | float | str):
        return value
    # datetime before date: a datetime is a date too.
    for kind, tag, convert in _TAGGED:
        if isinstance(value, kind):
            return {tag: convert(value)}
    msg = f"a value of type {type(value).__name__} cannot be backed up"
    raise TypeError(msg)


def decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        msg = "a tagged value has exactly one key"
        raise ValueError(msg)
    [(tag, raw)] = value.items()
    decoder = _DECODERS.get(tag)
    if decoder is None:
        msg = f"unknown value tag {tag!r}"
        raise ValueError(msg)
    return decoder(raw)
