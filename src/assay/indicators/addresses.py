"""IP addresses as indicators: parsed from the forms people write, refused when not public.

Standard-library checks alone are not enough: `is_private` also covers the
documentation ranges and `is_global` misses multicast, so the ranges that name a
refusal are listed here and checked in order, most specific first.
"""

from __future__ import annotations

import ipaddress

from assay.indicators.errors import IndicatorRefused, RefusalCode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DOCUMENTATION = tuple(
    ipaddress.ip_network(network)
    for network in (
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",
        "3fff::/20",
    )
)
# RFC 1918, unique local IPv6, deprecated site-local IPv6, and CGNAT shared space: all
# name hosts inside someone's network, never one on the internet.
_PRIVATE = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fec0::/10",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_address(text: str) -> IPAddress | None:
    """The IP address `text` spells (IPv6 may be in brackets, as in URLs), or None."""
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def address_text(address: IPAddress) -> str:
    """The canonical spelling of `address`: compressed, lower-case, and an IPv4-mapped
    IPv6 address with its IPv4 part dotted, as every Python version prints it alike."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return address.compressed


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def refuse_unless_public(address: IPAddress) -> None:
    """Raise `IndicatorRefused` unless `address` names a host on the public internet."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise IndicatorRefused(
                RefusalCode.LINK_LOCAL_ADDRESS,
                "an address with a zone index means something on one host only",
            )
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            try:
                refuse_unless_public(embedded)
            except IndicatorRefused as inner:
                raise IndicatorRefused(
                    inner.code, f"{address} carries {embedded}: {inner.message}"
                ) from None
            return
    checks: tuple[tuple[bool, RefusalCode, str], ...] = (
        (
            any(address in network for network in _DOCUMENTATION),
            RefusalCode.DOCUMENTATION_ADDRESS,
            "a documentation address is reserved for examples and names no real host",
        ),
        (
            address.is_unspecified,
            RefusalCode.UNSPECIFIED_ADDRESS,
            "the unspecified address names no host",
        ),
        (
            address.is_loopback,
            RefusalCode.LOOPBACK_ADDRESS,
            "a loopback address names the machine itself",
        ),
        (
            address.is_link_local,
            RefusalCode.LINK_LOCAL_ADDRESS,
            "a link-local address is reachable only on its own network segment",
        ),
        (
            address.is_multicast,
            RefusalCode.MULTICAST_ADDRESS,
            "a multicast address names a group of receivers, not a host",
        ),
        (
            any(address in network for network in _PRIVATE),
            RefusalCode.PRIVATE_ADDRESS,
            "a private address names a host inside a private network",
        ),
        (
            address.is_reserved or address.is_private or not address.is_global,
            RefusalCode.RESERVED_ADDRESS,
            "the address is reserved for special use and is not on the public internet",
        ),
    )
    for refused, code, message in checks:
        if refused:
            raise IndicatorRefused(code, message)
