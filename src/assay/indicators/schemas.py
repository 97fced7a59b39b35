"""What an indicator is once read: its type and its canonical value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IndicatorType(StrEnum):
    """The kinds of indicator Assay reads."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    DOMAIN = "domain"
    URL = "url"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    EMAIL = "email"


@dataclass(frozen=True)
class Indicator:
    """One indicator: `value` is its canonical spelling, `original` the text as given."""

    type: IndicatorType
    value: str
    original: str
