"""The host part of a URL or an email address: a public IP address or domain name."""

from __future__ import annotations

import ipaddress

from assay.indicators.addresses import address_text, parse_address, refuse_unless_public
from assay.indicators.domains import canonical_domain


def canonical_host(text: str) -> str:
    """`text` (a name, an IPv4 address or a bracketed IPv6 one) in canonical form."""
    address = parse_address(text)
    if address is None:
        return canonical_domain(text)
    refuse_unless_public(address)
    if isinstance(address, ipaddress.IPv6Address):
        return f"[{address_text(address)}]"
    return address_text(address)
