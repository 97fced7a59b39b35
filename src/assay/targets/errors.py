"""Errors of the targets feature."""

from __future__ import annotations

from assay.core.errors import AssayError


class TargetNotFound(AssayError):
    status, slug, title = 404, "target-not-found", "Target not found"


class InvalidTarget(AssayError):
    """The target cannot be used as given (its URL, its REST template); `errors` says
    what."""

    status, slug, title = 422, "target-invalid", "Target invalid"
