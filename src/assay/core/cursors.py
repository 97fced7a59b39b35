"""Opaque page cursors: a position (created_at, id) in newest-first order.

Rows written together share their `created_at`, so the position is the pair: a cursor
on the time alone would skip the rest of such a group. A cursor is only ever one this
API gave out; anything else is a 422 naming `query.cursor`, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, and_, or_

from assay.core.errors import ValidationFailed


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    text = f"{created_at.isoformat()}|{row_id.hex}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    created_at: datetime | None = None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, _, ident = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        parsed = datetime.fromisoformat(when)
        row_id = uuid.UUID(hex=ident)
        if parsed.utcoffset() is not None:
            # A forged offset can carry the calendar's first or last day past its edge.
            created_at = parsed.astimezone(UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        created_at = None
    if created_at is None:
        raise ValidationFailed(
            "The cursor is not one this API gave out; pass next_cursor from a previous page.",
            errors=[
                {"field": "query.cursor", "code": "invalid_cursor", "message": "unknown cursor"}
            ],
        )
    return created_at, row_id


class _Positioned(Protocol):
    created_at: datetime
    id: uuid.UUID


P = TypeVar("P", bound=_Positioned)
S = TypeVar("S", bound=Select[Any])


def newest_first(statement: S, entity: Any, cursor: str | None, limit: int) -> S:
    """`statement` from `cursor` on, newest first, one row more than `limit` (so the page
    knows whether another follows); `entity` has `created_at` and `id` columns."""
    if cursor is not None:
        created_at, row_id = decode_cursor(cursor)
        statement = statement.where(
            or_(
                entity.created_at < created_at,
                and_(entity.created_at == created_at, entity.id < row_id),
            )
        )
    ordered: S = statement.order_by(entity.created_at.desc(), entity.id.desc()).limit(limit + 1)
    return ordered


def page_of(rows: Sequence[P], limit: int) -> tuple[list[P], str | None]:
    """The page out of `newest_first`'s rows, and the next page's cursor (None: last)."""
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    return page, encode_cursor(page[-1].created_at, page[-1].id)
