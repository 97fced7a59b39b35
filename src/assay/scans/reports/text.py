"""Text and time helpers every renderer shares, so odd data renders instead of raising."""

import math
import re
from datetime import UTC, datetime

# XML 1.0 cannot carry these at all (not even as character references), and a lone
# surrogate cannot be encoded as UTF-8; an answer may contain any of them.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")
REPLACEMENT = "\ufffd"


def printable(text: str | None) -> str:
    """`text` with the characters XML 1.0 and UTF-8 cannot carry replaced by U+FFFD."""
    if not text:
        return ""
    return _UNSAFE_CHARS.sub(REPLACEMENT, text)


def one_line(text: str | None, limit: int) -> str:
    """`text` on one line, whitespace collapsed, cut to `limit` characters with an ellipsis."""
    flat = _WHITESPACE.sub(" ", printable(text)).strip()
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 0)].rstrip() + "…"


def utf8(text: str) -> bytes:
    """`text` as UTF-8; anything unencodable (a lone surrogate) becomes '?'."""
    return text.encode("utf-8", errors="replace")


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """RFC 3339 UTC timestamp ending in 'Z', or None."""
    if moment is None:
        return None
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def finite(value: float | None) -> float | None:
    """`value` when it is a finite number, else None (JSON has no NaN or infinity)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
