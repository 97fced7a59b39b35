"""CSRF protection for cookie-authenticated requests.

A token is ``<issued at, unix seconds>.<HMAC-SHA256(session id || issued at)>`` under a
key derived from the session secret: bound to one session, useless in another, valid
for `csrf_token_max_age_seconds`, and needing no storage. The console gets one at
sign-in and a fresh one from ``GET /v1/auth/csrf-token`` (`assay.auth.routes`). The
Origin (or Referer) of an unsafe request must also be our own or an allowed one.
"""

from __future__ import annotations

import hmac
import time
import uuid
from hashlib import sha256
from urllib.parse import urlsplit

from assay.core.errors import Forbidden

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A token issued this far in the future (clock steps between processes) still counts.
CLOCK_SKEW_SECONDS = 60
_MAX_TOKEN_LENGTH = 96
# Issued-at is unix seconds: twelve digits reach the year 33658 and, unlike any number
# of digits, always fit the eight bytes the MAC covers.
_MAX_ISSUED_AT_DIGITS = 12


class CsrfRejected(Forbidden):
    title = "CSRF check failed"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, extra={"reason": reason})


def _mac(key: bytes, session_id: uuid.UUID, issued_at: int) -> str:
    return hmac.new(key, session_id.bytes + issued_at.to_bytes(8, "big"), sha256).hexdigest()


def csrf_token(key: bytes, session_id: uuid.UUID, issued_at: int | None = None) -> str:
    """A token for `session_id`, issued now (or at `issued_at`)."""
    issued = int(time.time()) if issued_at is None else issued_at
    return f"{issued}.{_mac(key, session_id, issued)}"


def _origin(url: str) -> str | None:
    """The origin of a Referer, or None when it is no URL (an unclosed IPv6 bracket)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_csrf(
    key: bytes,
    session_id: uuid.UUID,
    method: str,
    presented: str | None,
    origin: str | None,
    referer: str | None,
    allowed_origins: frozenset[str],
    max_age_seconds: int,
) -> None:
    """Raise CsrfRejected (403) unless an unsafe request carries an allowed origin and a
    current token of this session."""
    if method in SAFE_METHODS:
        return
    if not origin and not referer:
        raise CsrfRejected("origin-missing", "The request carries neither Origin nor Referer.")
    source = origin or _origin(referer or "")
    if source is None or source.lower() not in allowed_origins:
        raise CsrfRejected("origin-not-allowed", "The request's origin is not allowed.")
    if not presented:
        raise CsrfRejected("token-missing", "The CSRF token is missing (send it in X-CSRF-Token).")
    issued_text, separator, mac = presented.partition(".")
    if (
        not separator
        or len(presented) > _MAX_TOKEN_LENGTH
        or len(issued_text) > _MAX_ISSUED_AT_DIGITS
        or not issued_text.isascii()
        or not issued_text.isdigit()
    ):
        raise CsrfRejected("token-malformed", "The CSRF token is malformed.")
    issued_at = int(issued_text)
    expected = _mac(key, session_id, issued_at)
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        raise CsrfRejected("token-invalid", "The CSRF token is not valid for this session.")
    age = time.time() - issued_at
    if age > max_age_seconds or age < -CLOCK_SKEW_SECONDS:
        raise CsrfRejected(
            "token-expired",
            "The CSRF token has expired; fetch a new one from GET /v1/auth/csrf-token.",
        )
