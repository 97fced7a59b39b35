"""Why an indicator was refused: a stable code and a message safe to show a user."""

from __future__ import annotations

from enum import StrEnum


class RefusalCode(StrEnum):
    """The stable reason an indicator was refused; callers may branch on it."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNRECOGNISED = "unrecognised"
    TYPE_MISMATCH = "type_mismatch"
    INVALID_DOMAIN = "invalid_domain"
    NOT_PUBLIC_DOMAIN = "not_public_domain"
    INVALID_URL = "invalid_url"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    INVALID_EMAIL = "invalid_email"
    UNSPECIFIED_ADDRESS = "unspecified_address"
    LOOPBACK_ADDRESS = "loopback_address"
    PRIVATE_ADDRESS = "private_address"
    LINK_LOCAL_ADDRESS = "link_local_address"
    MULTICAST_ADDRESS = "multicast_address"
    DOCUMENTATION_ADDRESS = "documentation_address"
    RESERVED_ADDRESS = "reserved_address"


class IndicatorRefused(Exception):
    """The text is not an indicator Assay may look up.

    `message` names why in words fit for the person who typed it; it never echoes more
    than the part of the input that was refused.
    """

    def __init__(self, code: RefusalCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
