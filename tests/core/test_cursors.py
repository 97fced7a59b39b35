"""Page cursors: a round trip, and anything forged is a 422 naming query.cursor."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from assay.core.cursors import decode_cursor, encode_cursor
from assay.core.errors import ValidationFailed
from tests.support.models import auth

# Fixed, not random: pytest-xdist workers must collect the same parameters.
SOME_ID = "5f1d2c3b4a5948e7a6b5c4d3e2f10987"


def _forged(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_cursor_returns_the_position_it_was_made_from() -> None:
    when, row_id = datetime(2026, 12, 7, 13, 0, 0, 123456, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(when, row_id)) == (when, row_id)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        _forged("2026-12-07T13:00:00|not-a-uuid"),
        _forged(f"2026-12-07T13:00:00|{SOME_ID}"),  # no offset: not ours
        # An offset that carries the calendar's first day past its edge (OverflowError).
        _forged(f"0001-01-01T00:00:00+14:00|{SOME_ID}"),
        _forged(f"9999-12-31T23:59:59-14:00|{SOME_ID}"),
    ],
)
def test_a_forged_cursor_is_refused_naming_the_field(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(cursor)
    assert refused.value.errors == [
        {"field": "query.cursor", "code": "invalid_cursor", "message": "unknown cursor"}
    ]


async def test_every_paged_list_refuses_a_cursor_past_the_calendars_edge(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    # The jobs list once decoded cursors itself and answered this with a 500.
    edge = _forged(f"0001-01-01T00:00:00+14:00|{uuid.uuid4().hex}")
    for path in ("/v1/jobs", "/v1/predictions"):
        answer = await client.get(path, params={"cursor": edge}, headers=auth(owner_token))
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["errors"][0]["field"] == "query.cursor"
