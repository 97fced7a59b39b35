"""The base of every request body: validation, never mangling.

Request bodies are checked as sent. Unknown fields are refused (no mass assignment),
no value is coerced into another type (``"5"`` and ``5.0`` are not ``5``, ``"true"`` is
not ``true``), and no string is trimmed: a name with surrounding spaces is refused with
a message saying so instead of being stored as something the client did not send.

FastAPI validates bodies after `json.loads`, in pydantic's Python mode, where strict
mode would also refuse the JSON spellings of dates and UUIDs; `IsoDatetime`,
`AwareIsoDatetime` and `UuidText` accept exactly those spellings (and nothing else,
such as numbers).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from assay.core.permissions import ALL_PERMISSIONS


class StrictRequest(BaseModel):
    """Unknown fields refused, no coercion between types, strings kept as sent."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=False)


_PADDED = re.compile(r"^\s|\s\Z")


# The same rule for the OpenAPI document (Python and ECMAScript both read it).
NO_SURROUNDING_WHITESPACE_PATTERN = r"^(?!\s)[\s\S]*(?<!\s)$"


def _refuse_surrounding_whitespace(value: str) -> str:
    if _PADDED.search(value):
        msg = "must not start or end with whitespace"
        raise ValueError(msg)
    return value


@dataclass(frozen=True, slots=True)
class Unpadded:
    """`Annotated[str, ..., Unpadded()]`: refuse a string with leading or trailing
    whitespace (and say so in the OpenAPI document) instead of trimming it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            _refuse_surrounding_whitespace, handler(source)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = NO_SURROUNDING_WHITESPACE_PATTERN
        return json_schema


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        msg = "must be an ISO 8601 date-time string"
        raise ValueError(msg)  # noqa: TRY004 - pydantic reports ValueError as a 422
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        msg = "must be an ISO 8601 date-time, such as 2030-01-31T12:00:00Z"
        raise ValueError(msg) from None


def _uuid_text(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value
    msg = "must be a UUID in its hyphenated form (8-4-4-4-12 hex digits)"
    if not isinstance(value, str):
        raise ValueError(msg)  # noqa: TRY004 - pydantic reports ValueError as a 422
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValueError(msg) from None
    # uuid.UUID also takes braces, a urn: prefix and misplaced hyphens.
    if str(parsed) != value.lower():
        raise ValueError(msg)
    return parsed


def _aware_iso_datetime(value: Any) -> Any:
    parsed = _iso_datetime(value)
    if isinstance(parsed, datetime) and parsed.utcoffset() is not None:
        # In UTC from here on (it is stored and compared in UTC). An offset can carry
        # the first or the last day of the calendar past its edge (year 0 or 10000).
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            msg = "is out of range: in UTC it falls outside the years 1 to 9999"
            raise ValueError(msg) from None
    return parsed


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_datetime)]


# With a time zone (or Z): a bare local time would be a guess about which one. The
# value is converted to UTC.
AwareIsoDatetime = Annotated[AwareDatetime, BeforeValidator(_aware_iso_datetime)]


UuidText = Annotated[uuid.UUID, BeforeValidator(_uuid_text)]


# U+0000: PostgreSQL's text and jsonb cannot hold it. A surrogate code point in a parsed
# str is one without its partner (parsers join escaped pairs into one character): it
# has no UTF-8 form, so no answer or record holding it can be written.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


NUL_CHARACTER = "nul_character"


UNPAIRED_SURROGATE = "unpaired_surrogate"


UNSTORABLE_MESSAGES = {
    NUL_CHARACTER: "holds U+0000 (NUL), which no text in Assay may hold",
    UNPAIRED_SURROGATE: (
        "holds a UTF-16 surrogate (U+D800 to U+DFFF) that is not part of a character; "
        "write the character itself, or in YAML its 8-digit \\U escape"
    ),
}


def unstorable_code(text: str) -> str | None:
    """NUL_CHARACTER or UNPAIRED_SURROGATE when `text` holds such a code point."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return NUL_CHARACTER if found.group() == "\x00" else UNPAIRED_SURROGATE


def find_unstorable_text(document: Any, path: str) -> tuple[str, str] | None:
    """The first string (key or value) of a parsed document that `unstorable_code`
    refuses, as (dotted path, code); None when there is none. Iterative: a document
    nested as deep as its parser allowed does not exhaust the stack here."""
    pending: list[tuple[str, Any]] = [(path, document)]
    while pending:
        where, node = pending.pop()
        if isinstance(node, str):
            code = unstorable_code(node)
            if code is not None:
                return where, code
        elif isinstance(node, dict):
            children = []
            for key, value in node.items():
                child = f"{where}.{key}"
                if isinstance(key, str):
                    code = unstorable_code(key)
                    if code is not None:
                        return where, code
                children.append((child, value))
            pending.extend(reversed(children))
        elif isinstance(node, list):
            pending.extend(reversed([(f"{where}.{i}", item) for i, item in enumerate(node)]))
    return None


Email = Annotated[
    str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
]


# Long enough for any passphrase (policy caps at 1,024 code points); never truncated.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


Slug = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9-]+$")]


Name = Annotated[str, StringConstraints(min_length=1, max_length=200), Unpadded()]


RoleName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]


# Documented as the enum it is; an unknown name is refused by the service, with its code.
Permission = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    WithJsonSchema({"type": "string", "enum": sorted(ALL_PERMISSIONS)}),
]
