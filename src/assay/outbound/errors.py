"""Why an outbound request was refused before any connection was made."""

from __future__ import annotations

from typing import Literal

RefusalReason = Literal[
    "url_invalid",
    "not_https",
    "name_unresolved",
    "address_refused",
]


class DestinationRefused(Exception):
    """The URL may not be called: its shape, its scheme or one of its addresses.

    Not a client-facing error by itself: each feature turns it into its own problem
    (webhooks: a 422 at registration, a failed attempt at delivery).
    """

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        self.reason: RefusalReason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class OutboundFailed(Exception):
    """The checked destination could not be reached, or did not answer in time."""

    def __init__(self, reason: Literal["timeout", "unreachable"], detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
