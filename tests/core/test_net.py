from __future__ import annotations

import pytest

from assay.core.net import parse_networks, resolve_client_address

PROXIES = parse_networks(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No trusted proxy: the header is ignored, whatever it says.
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),
        # Through our proxy: the client it saw.
        ("10.0.0.5", "198.51.100.9", "198.51.100.9"),
        # A spoofed first hop is skipped: the proxy appended the real one.
        ("10.0.0.5", "1.2.3.4, 198.51.100.9", "198.51.100.9"),
        # Two of our proxies in a row.
        ("10.0.0.5", "198.51.100.9, 10.1.1.1", "198.51.100.9"),
        # A garbage chain proves nothing: fall back to the peer.
        ("10.0.0.5", "not-an-ip", "10.0.0.5"),
        # All hops trusted: the left-most one.
        ("10.0.0.5", "10.0.0.9", "10.0.0.9"),
        ("::1", "2001:db8::1", "2001:db8::1"),
        ("10.0.0.5", None, "10.0.0.5"),
        (None, "1.2.3.4", None),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str | None, forwarded: str | None, expected: str | None
) -> None:
    assert resolve_client_address(peer, forwarded, PROXIES) == expected


def test_without_configured_proxies_the_peer_is_the_client() -> None:
    assert resolve_client_address("10.0.0.5", "1.2.3.4", ()) == "10.0.0.5"
