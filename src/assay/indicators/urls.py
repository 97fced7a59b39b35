"""URLs as indicators: scheme and host canonical, the rest kept exactly as given."""

from __future__ import annotations

import re

from assay.indicators.errors import IndicatorRefused, RefusalCode
from assay.indicators.hosts import canonical_host

# Schemes Assay looks up, each with the port it drops because it is the default.
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# scheme :// authority, then path, query and fragment (kept verbatim: servers may read
# their case, their escapes and their order).
_PARTS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)", re.DOTALL)
_HOST_PORT = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(?::(\d*))?")
MAX_PORT = 65535


def canonical_url(text: str) -> str:
    """`text` (with a scheme) as a canonical URL, or raise `IndicatorRefused`."""
    parts = _PARTS.fullmatch(text)
    if parts is None:
        raise IndicatorRefused(RefusalCode.INVALID_URL, "a URL is scheme://host/path")
    scheme_text, authority, rest = parts.groups()
    scheme = scheme_text.lower()
    if scheme not in DEFAULT_PORTS:
        raise IndicatorRefused(
            RefusalCode.UNSUPPORTED_SCHEME, "only http, https and ftp URLs are read"
        )
    userinfo, at, host_port = authority.rpartition("@")
    host_and_port = _HOST_PORT.fullmatch(host_port)
    if host_and_port is None or not host_and_port.group(1):
        raise IndicatorRefused(RefusalCode.INVALID_URL, "the URL names no valid host")
    host_text, port_text = host_and_port.groups()
    port = ""
    if port_text:
        number = int(port_text[:6])
        if not 0 < number <= MAX_PORT:
            raise IndicatorRefused(RefusalCode.INVALID_URL, "the URL's port is out of range")
        if number != DEFAULT_PORTS[scheme]:
            port = f":{number}"
    host = canonical_host(host_text)
    return f"{scheme}://{userinfo}{at}{host}{port}{rest}"
