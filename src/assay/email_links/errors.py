"""Errors of emailed links."""

from __future__ import annotations

from assay.core.errors import BadRequest


class InvalidEmailToken(BadRequest):
    """One answer for unknown, expired, used and voided links: probing learns nothing."""

    title = "Invalid or expired link"
    # The failed attempt is recorded as a security event; keep it.
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__(
            "The link is not valid: it may have expired, been used already, or been "
            "replaced by a newer one. Request a new one."
        )
