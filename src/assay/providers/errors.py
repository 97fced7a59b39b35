"""Errors of the providers feature."""

from __future__ import annotations

from assay.core.errors import AssayError


class InvalidProvider(AssayError):
    """The provider document is not valid: `errors` lists each problem with its path."""

    status, slug, title = 422, "provider-invalid", "Provider definition invalid"


class ProviderNotFound(AssayError):
    status, slug, title = 404, "provider-not-found", "Provider not found"
