"""Error tracking with Sentry: the `sentry` extra's package, imported at the top.

Only `assay.core.tracing` imports this module, when `ASSAY_SENTRY_DSN` is set; nothing
else may, so that an install without `assay[sentry]` starts.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from assay import __version__
from assay.core.logging import REDACTED, _redact
from assay.settings import Settings

_SENSITIVE_HEADERS = frozenset(
    {"authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization", "x-csrf-token"}
)


def scrub_sentry_event(event: MutableMapping[str, Any], _hint: Mapping[str, Any]) -> Any:
    """Remove bodies, cookies, credentials and secret-looking values before sending."""
    request = event.get("request")
    if isinstance(request, MutableMapping):
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("query_string", None)
        headers = request.get("headers")
        if isinstance(headers, MutableMapping):
            for name in list(headers):
                if name.lower() in _SENSITIVE_HEADERS:
                    headers[name] = REDACTED
    for section in ("extra", "contexts"):
        if isinstance(event.get(section), Mapping):
            event[section] = _redact(event[section])
    return event


def start(settings: Settings, dsn: str) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.env.value,
        release=f"assay@{__version__}",
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=scrub_sentry_event,  # type: ignore[arg-type]
        event_scrubber=EventScrubber(
            denylist=[*DEFAULT_DENYLIST, "encryption_key", "token_signing_key", "api_key"]
        ),
        # We report unhandled errors ourselves, once; log lines are not events.
        integrations=[LoggingIntegration(event_level=None)],
    )


def report_exception(exc: BaseException, request_id: str | None = None) -> None:
    if sentry_sdk.get_client().is_active():
        with sentry_sdk.new_scope() as scope:
            if request_id:
                # Support staff search by the id a client quotes from the problem body.
                scope.set_tag("request_id", request_id)
            scope.capture_exception(exc)


def stop() -> None:
    client = sentry_sdk.get_client()
    if client.is_active():
        client.flush(timeout=5)
        client.close()
