"""Query parameters every history listing shares: a time range and a keyset cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from assay.core.schemas import AwareIsoDatetime

Since = Annotated[
    AwareIsoDatetime | None, Query(description="Inclusive; RFC 3339 with a UTC offset.")
]
Until = Annotated[
    AwareIsoDatetime | None, Query(description="Exclusive; RFC 3339 with a UTC offset.")
]
Cursor = Annotated[
    str | None, Query(max_length=200, description="next_cursor of the previous page.")
]
PageLimit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
