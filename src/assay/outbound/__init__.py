"""Outbound HTTP: the one SSRF guard every request Assay makes to a user-given URL uses.

`service.OutboundClient` checks a URL (scheme, every resolved address against the
refused ranges and the operator's allow-list), then connects to the checked address
itself, never re-resolving the name, with no redirects followed, bounded time and a
bounded response.
"""
