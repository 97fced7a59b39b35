"""Email addresses as indicators: the local part as given, the domain canonical."""

from __future__ import annotations

import ipaddress
import re

from assay.indicators.addresses import address_text, parse_address, refuse_unless_public
from assay.indicators.domains import canonical_domain
from assay.indicators.errors import IndicatorRefused, RefusalCode

MAX_LOCAL_LENGTH = 64
# RFC 5322's dot-atom: the local parts mail systems accept unquoted.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")


def canonical_email(text: str) -> str:
    """`text` (local@domain) as a canonical email address, or raise `IndicatorRefused`."""
    local, _, domain = text.rpartition("@")
    if len(local) > MAX_LOCAL_LENGTH or not _LOCAL_PART.fullmatch(local):
        raise IndicatorRefused(
            RefusalCode.INVALID_EMAIL,
            "an email address's local part is 1 to 64 letters, digits or symbols",
        )
    # An address literal (user@[198.51.100.7], user@[IPv6:...]) or a bare IP address.
    literal = domain.removeprefix("[").removesuffix("]")
    if literal[:5].lower() == "ipv6:":
        literal = literal[5:]
    address = parse_address(literal)
    if address is None:
        if domain.startswith("["):
            raise IndicatorRefused(
                RefusalCode.INVALID_EMAIL, "the address literal is not an IP address"
            )
        return f"{local}@{canonical_domain(domain)}"
    refuse_unless_public(address)
    tag = "IPv6:" if isinstance(address, ipaddress.IPv6Address) else ""
    return f"{local}@[{tag}{address_text(address)}]"
