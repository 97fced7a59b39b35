"""Domain names as indicators: IDNA-encoded, lower-case, and only names the public
internet can resolve (a registrable name under a public suffix)."""

from __future__ import annotations

import re

import idna
import tldextract

from assay.indicators.errors import IndicatorRefused, RefusalCode

MAX_NAME_LENGTH = 253
# DNS labels as found in the wild: letters, digits, hyphens, and underscores, which
# registrars refuse but subdomains of malicious hosts use.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# Names for private or special use (RFC 6761, RFC 6762, RFC 8375 and ICANN's
# `.internal`); most are not in the Public Suffix List either, but each gets its own
# message here. `.arpa` names address records and infrastructure, not hosts.
_SPECIAL_USE_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "localdomain",
    "lan",
    "home.arpa",
    "arpa",
    "test",
    "invalid",
    "example",
)


def _suffix_extractor() -> tldextract.TLDExtract:
    """A public-suffix splitter on the Public Suffix List snapshot tldextract ships.

    No suffix list URL and no cache directory: it never fetches the list nor writes a
    file, it reads the snapshot inside the package (its fallback).
    """
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


_EXTRACT = _suffix_extractor()


def _idna_ascii(name: str) -> str:
    """`name` in its ASCII (punycode) form, by UTS 46 mapping, or refused."""
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, ValueError):
        raise IndicatorRefused(
            RefusalCode.INVALID_DOMAIN, "the name is not a valid internationalised domain name"
        ) from None


def canonical_domain(text: str) -> str:
    """`text` as a canonical public domain name, or raise `IndicatorRefused`."""
    name = text.removesuffix(".")
    if not name or len(name) > MAX_NAME_LENGTH:
        raise IndicatorRefused(RefusalCode.INVALID_DOMAIN, "a domain name has 1 to 253 characters")
    name = name.lower()
    if not name.isascii() or "xn--" in name:
        name = _idna_ascii(name)
    labels = name.split(".")
    if len(name) > MAX_NAME_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise IndicatorRefused(
            RefusalCode.INVALID_DOMAIN,
            "a domain name is dot-separated labels of 1 to 63 letters, digits or hyphens",
        )
    if labels[-1].isdigit():
        raise IndicatorRefused(
            RefusalCode.INVALID_DOMAIN,
            "the name ends in a number: it is neither a domain name nor an IP address",
        )
    for suffix in _SPECIAL_USE_SUFFIXES:
        if name == suffix or name.endswith(f".{suffix}"):
            raise IndicatorRefused(
                RefusalCode.NOT_PUBLIC_DOMAIN,
                f"{suffix} and the names under it are for private or special use, not public",
            )
    if len(labels) == 1:
        raise IndicatorRefused(
            RefusalCode.NOT_PUBLIC_DOMAIN,
            "a single-label name is resolved only inside a local network",
        )
    parts = _EXTRACT(name)
    if not parts.suffix:
        raise IndicatorRefused(
            RefusalCode.NOT_PUBLIC_DOMAIN, "the name does not end in a public suffix"
        )
    if not parts.domain:
        raise IndicatorRefused(
            RefusalCode.NOT_PUBLIC_DOMAIN,
            "the name is a public suffix itself, not a name registered under one",
        )
    return name
