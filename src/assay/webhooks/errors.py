"""Errors of the webhooks feature."""

from __future__ import annotations

from assay.core.errors import AssayError


class WebhookDestinationRefused(AssayError):
    """The endpoint URL may not be called: not https (in production), or its host is, or
    resolves to, an address outbound requests may not reach (`errors` says which)."""

    status, slug, title = 422, "webhook-destination-refused", "Webhook destination refused"
