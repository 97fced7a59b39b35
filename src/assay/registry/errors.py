"""Errors of the model registry."""

from __future__ import annotations

from assay.core.errors import AssayError


class ModelUnavailable(AssayError):
    """The model version cannot serve: it failed its integrity check or will not load."""

    status, slug, title = 503, "model-unavailable", "Model unavailable"
