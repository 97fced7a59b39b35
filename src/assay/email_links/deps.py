"""What routes that redeem emailed links depend on: charging the link holder's budget,
and the one documented answer for a link that cannot be used."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from assay.email_links.service import holder
from assay.http.rate_limit import limit_auth_account

INVALID_LINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The link is unknown, expired, used or replaced (one answer for all)"}
}


async def limit_link_holder(
    request: Request, db: AsyncSession, purposes: tuple[str, ...], token: str
) -> None:
    """Charge the per-account budget of whoever the link was sent to (as login does).

    An unknown token names no account: only the per-address limit applies to it, and
    guessing a 256-bit token is hopeless anyway.
    """
    address = await holder(db, purposes, token)
    if address is not None:
        await limit_auth_account(request, address)
