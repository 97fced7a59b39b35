"""Canonicalising threat indicators: the one entry point, `canonicalise`."""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from assay.indicators.addresses import address_text, parse_address, refuse_unless_public
from assay.indicators.domains import canonical_domain
from assay.indicators.emails import canonical_email
from assay.indicators.errors import IndicatorRefused, RefusalCode
from assay.indicators.refang import refang
from assay.indicators.schemas import Indicator, IndicatorType
from assay.indicators.urls import SCHEME, canonical_url

__all__ = [
    "MAX_INPUT_LENGTH",
    "Indicator",
    "IndicatorRefused",
    "IndicatorType",
    "RefusalCode",
    "canonicalise",
]

# Longer than any URL worth looking up; refused before any parsing, so that no
# pattern ever runs over a large input.
MAX_INPUT_LENGTH = 2048
_HASH_TYPES = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256}
_HEX = re.compile(r"[0-9a-fA-F]+")
# A URL without its scheme: a host (and perhaps user info and a port), then a path,
# query or fragment, or at least a port (example.com:8080 is a URL, not a domain).
_SCHEMELESS_URL = re.compile(r"(?:[^/?#@]*@)?([^/?#@]+?)(:\d{1,5})?([/?#].*)?", re.DOTALL)
_NAME_PUNCTUATION = frozenset("-._")


def _refuse_unreadable_characters(text: str, *, after_refang: bool) -> None:
    """Refuse private-use and surrogate code points, and (once refanged) control and
    format characters: no indicator holds them, and they can hide what a value says."""
    refused = {"Cc", "Cf", "Co", "Cs"} if after_refang else {"Co", "Cs"}
    if any(unicodedata.category(character) in refused for character in text):
        raise IndicatorRefused(
            RefusalCode.UNRECOGNISED, "the text holds control or invisible characters"
        )


def _looks_like_name(text: str) -> bool:
    return any(character.isalnum() for character in text) and all(
        character.isalnum() or character in _NAME_PUNCTUATION or not character.isascii()
        for character in text
    )


def _is_schemeless_url(text: str) -> bool:
    parts = _SCHEMELESS_URL.fullmatch(text)
    if parts is None:
        return False
    host, port, rest = parts.groups()
    names_host = _looks_like_name(host) or parse_address(host) is not None
    return names_host and (port is not None or rest is not None)


def _detect(text: str) -> IndicatorType:
    """The type `text` (refanged) is written as; the checks only read its shape."""
    if SCHEME.match(text):
        return IndicatorType.URL
    hash_type = _HASH_TYPES.get(len(text))
    if hash_type is not None and _HEX.fullmatch(text):
        return hash_type
    address = parse_address(text)
    if address is not None:
        is_ipv4 = isinstance(address, ipaddress.IPv4Address)
        return IndicatorType.IPV4 if is_ipv4 else IndicatorType.IPV6
    if _is_schemeless_url(text):
        return IndicatorType.URL
    if "@" in text:
        return IndicatorType.EMAIL
    if _looks_like_name(text):
        return IndicatorType.DOMAIN
    raise IndicatorRefused(
        RefusalCode.UNRECOGNISED,
        "the text is not an IP address, domain, URL, email address or file hash",
    )


def _canonical_value(kind: IndicatorType, text: str) -> str:
    if kind in {IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256}:
        return text.lower()
    if kind in {IndicatorType.IPV4, IndicatorType.IPV6}:
        address = parse_address(text)
        if address is None:  # pragma: no cover - _detect parsed it already
            raise IndicatorRefused(RefusalCode.UNRECOGNISED, "not an IP address")
        refuse_unless_public(address)
        return address_text(address)
    if kind is IndicatorType.EMAIL:
        return canonical_email(text)
    if kind is IndicatorType.URL:
        # Without a scheme (example.com/path), the web's default.
        return canonical_url(text if SCHEME.match(text) else f"http://{text}")
    return canonical_domain(text)


def canonicalise(raw: str, *, expected: IndicatorType | None = None) -> Indicator:
    """Read `raw` (defanged or not) as one indicator in its canonical form.

    Raises `IndicatorRefused` when it is empty, too long, not an indicator, not of the
    `expected` type, or names something that must not be looked up (a private, loopback,
    documentation or other non-public address, or a name that is not public).
    """
    if len(raw) > MAX_INPUT_LENGTH:
        raise IndicatorRefused(
            RefusalCode.TOO_LONG, f"an indicator has at most {MAX_INPUT_LENGTH} characters"
        )
    _refuse_unreadable_characters(raw, after_refang=False)
    text = refang(raw)
    if not text:
        raise IndicatorRefused(RefusalCode.EMPTY, "no indicator was given")
    _refuse_unreadable_characters(text, after_refang=True)
    kind = _detect(text)
    if expected is not None and kind is not expected:
        raise IndicatorRefused(
            RefusalCode.TYPE_MISMATCH, f"expected {expected.value}, read {kind.value}"
        )
    return Indicator(type=kind, value=_canonical_value(kind, text), original=raw)
