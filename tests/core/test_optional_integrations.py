"""Sentry and OpenTelemetry are extras: imported only when a setting turns them on, and a
setting that needs a missing extra is a named configuration problem, never a traceback.

"Missing" is simulated in this process (the suite installs every extra): a module set to
None in `sys.modules` cannot be imported. The real thing, a base install, is what
`make smoke` (scripts/wheel_smoke.py) starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.app import ConfigurationError, create_app
from assay.cli import app as cli
from assay.core.tracing import (
    OTEL,
    SENTRY,
    integration_problems,
    report_exception,
    start_error_tracking,
    stop_error_tracking,
)
from assay.settings import Settings

runner = CliRunner()
# A DSN on a port nothing listens on: nothing is ever sent in these tests.
DSN = "http://publickey@127.0.0.1:9/1"
SENTRY_PROBLEM = (
    "ASSAY_SENTRY_DSN is set, but its packages cannot be imported "
    "(no module 'sentry_sdk.scrubber'): install the sentry extra, pip install 'assay[sentry]'."
)
OTEL_PROBLEM = (
    "ASSAY_OTEL_ENABLED is on, but its packages cannot be imported "
    "(no module 'opentelemetry.instrumentation.fastapi'): install the otel extra, "
    "pip install 'assay[otel]'."
)


@pytest.fixture
def sentry_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with sentry-sdk 3.0, which has no `sentry_sdk.scrubber` (the break of issue 15)."""
    monkeypatch.setitem(sys.modules, "sentry_sdk.scrubber", None)
    monkeypatch.delitem(sys.modules, SENTRY.module, raising=False)


@pytest.fixture
def without_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.fastapi", None)
    monkeypatch.delitem(sys.modules, OTEL.module, raising=False)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSAY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.mark.usefixtures("sentry_3", "without_otel")
def test_each_setting_whose_extra_is_missing_is_one_problem_naming_the_extra(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(sentry_dsn=DSN, otel_enabled=True)
    assert integration_problems(settings) == [OTEL_PROBLEM, SENTRY_PROBLEM]
    assert integration_problems(settings_factory()) == []


@pytest.mark.usefixtures("sentry_3")
def test_create_app_refuses_a_setting_whose_extra_is_missing(
    settings_factory: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings_factory(sentry_dsn=DSN))
    assert refused.value.problems == [SENTRY_PROBLEM]


@pytest.mark.usefixtures("cli_env", "sentry_3")
@pytest.mark.parametrize(
    ("command", "title"),
    [(["serve"], "Refusing to start:"), (["config", "check"], "Not ready for production:")],
)
def test_serve_and_config_check_name_the_missing_extra(
    monkeypatch: pytest.MonkeyPatch, command: list[str], title: str
) -> None:
    monkeypatch.setenv("ASSAY_SENTRY_DSN", DSN)
    result = runner.invoke(cli, command)
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    assert title in result.stderr
    assert f"  - {SENTRY_PROBLEM}" in result.stderr.splitlines()


@pytest.mark.usefixtures("cli_env", "without_otel")
def test_serve_in_production_lists_the_missing_extra_with_the_other_problems(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSAY_ENV", "production")
    monkeypatch.setenv("ASSAY_OTEL_ENABLED", "true")
    result = runner.invoke(cli, ["serve", "--reload"])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert "Refusing to start in production:" in result.stderr
    assert "ASSAY_TOKEN_SIGNING_KEY is not set." in result.stderr
    assert f"  - {OTEL_PROBLEM}" in result.stderr.splitlines()
    assert "  - --reload is for development." in result.stderr.splitlines()


def test_error_tracking_that_never_started_neither_imports_nor_reports(
    monkeypatch: pytest.MonkeyPatch, settings_factory: Callable[..., Settings]
) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # not installed at all
    monkeypatch.delitem(sys.modules, SENTRY.module, raising=False)
    assert start_error_tracking(settings_factory()) is False
    report_exception(RuntimeError("unhandled"), "request-id")
    stop_error_tracking()
    assert SENTRY.module not in sys.modules
