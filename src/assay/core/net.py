"""Client address resolution that trusts forwarding headers only from known proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def resolve_client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> str | None:
    """The first address, from the right, that is not one of our trusted proxies.

    A client can prepend anything to X-Forwarded-For; only the hops our own proxies
    appended are believed, so the walk stops at the first untrusted one.
    """
    if peer is None or not trusted or not _is_trusted(peer, trusted) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain is not evidence of anything
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer
