"""Errors of the lookups feature."""

from __future__ import annotations

from assay.core.errors import AssayError


class IndicatorRejected(AssayError):
    """The indicator cannot be looked up: unrecognised, too long, or an address that must
    never be (loopback, private, documentation ...); `errors` says which."""

    status, slug, title = 422, "indicator-rejected", "Indicator rejected"


class VerdictModelMissing(AssayError):
    """The organisation has no verdict model (the threat-intelligence pack registers one)."""

    status, slug, title = 409, "verdict-model-missing", "Verdict model missing"


class LookupNotFound(AssayError):
    status, slug, title = 404, "lookup-not-found", "Lookup not found"
