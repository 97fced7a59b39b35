"""Opt-in tracing (OpenTelemetry over OTLP/HTTP) and error tracking (Sentry).

Both are extras, `assay[otel]` and `assay[sentry]`, whose packages only their own modules
import (`otel_tracing`, `sentry_reporting`), and those only when a setting turns them on
(`ASSAY_OTEL_ENABLED`, `ASSAY_SENTRY_DSN`). A setting that turns one on without its extra
is a configuration problem naming the extra (`integration_problems`): `assay serve` and
`assay config check` report it, and `create_app` refuses to build the app.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from assay.settings import Settings

if TYPE_CHECKING:  # the otel extra: present where types are checked, optional elsewhere
    from opentelemetry.sdk.trace.export import SpanExporter


@dataclass(frozen=True, slots=True)
class Integration:
    """An optional integration: the setting that turns it on, its extra, and the Assay
    module that imports its packages."""

    setting: str
    extra: str
    module: str


OTEL = Integration("ASSAY_OTEL_ENABLED is on", "otel", "assay.core.otel_tracing")
SENTRY = Integration("ASSAY_SENTRY_DSN is set", "sentry", "assay.core.sentry_reporting")


class IntegrationNotInstalled(RuntimeError):
    """A setting turns on an integration whose packages cannot be imported; the message
    names the setting and the extra that installs them."""


class Tracing(Protocol):
    """What the app keeps of started tracing: a way to flush and stop it."""

    def shutdown(self) -> None: ...


def enabled_integrations(settings: Settings) -> list[Integration]:
    """The integrations the settings turn on."""
    enabled: list[Integration] = []
    if settings.otel_enabled:
        enabled.append(OTEL)
    if settings.sentry_dsn is not None:
        enabled.append(SENTRY)
    return enabled


def require(integration: Integration) -> None:
    """Import the integration's module, or raise `IntegrationNotInstalled`."""
    try:
        importlib.import_module(integration.module)
    except ImportError as exc:
        # A missing package, or one too new to have what we import (sentry-sdk 3 has no
        # `sentry_sdk.scrubber`): either way, the extra installs a version that works.
        reason = f"no module {exc.name!r}" if isinstance(exc, ModuleNotFoundError) else exc
        msg = (
            f"{integration.setting}, but its packages cannot be imported ({reason}): "
            f"install the {integration.extra} extra, pip install 'assay[{integration.extra}]'."
        )
        raise IntegrationNotInstalled(msg) from None


def integration_problems(settings: Settings) -> list[str]:
    """One problem per integration a setting turns on whose extra is not installed."""
    problems: list[str] = []
    for integration in enabled_integrations(settings):
        try:
            require(integration)
        except IntegrationNotInstalled as exc:
            problems.append(str(exc))
    return problems


def start_tracing(
    settings: Settings,
    app: FastAPI,
    engine: AsyncEngine,
    exporter: SpanExporter | None = None,
) -> Tracing:
    """Export the app's requests, queries and outgoing calls as OpenTelemetry traces."""
    require(OTEL)
    # Imported here, never at the top: the otel extra is optional.
    from assay.core import otel_tracing  # noqa: PLC0415 - see the comment above

    return otel_tracing.start_tracing(settings, app, engine, exporter)


def start_error_tracking(settings: Settings) -> bool:
    """Report unhandled errors to Sentry (scrubbed) when `ASSAY_SENTRY_DSN` is set."""
    if settings.sentry_dsn is None:
        return False
    require(SENTRY)
    # Imported here, never at the top: the sentry extra is optional.
    from assay.core import sentry_reporting  # noqa: PLC0415 - see the comment above

    sentry_reporting.start(settings, settings.sentry_dsn.get_secret_value())
    return True


def report_exception(exc: BaseException, request_id: str | None = None) -> None:
    """Send an unhandled error to Sentry, if error tracking started in this process."""
    if SENTRY.module not in sys.modules:
        return  # never started here: there is nowhere to report to
    # Already imported when error tracking started (the check above).
    from assay.core import sentry_reporting  # noqa: PLC0415 - see the comment above

    sentry_reporting.report_exception(exc, request_id)


def stop_error_tracking() -> None:
    """Flush and close the Sentry client, if error tracking started in this process."""
    if SENTRY.module not in sys.modules:
        return
    from assay.core import sentry_reporting  # noqa: PLC0415 - imported when it started

    sentry_reporting.stop()
