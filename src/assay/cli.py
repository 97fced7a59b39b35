"""The `assay` command line: everything an operator does at a terminal."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from assay import __version__
from assay.accounts.cli import disable, reset_password, unlock
from assay.audit_trail.cli import audit_app
from assay.backup.cli import backup, restore
from assay.cli_support import (
    EXIT_CONFIG_PROBLEM,
    check_cache,
    readiness_problems,
    reported_failures,
)
from assay.core import migrations
from assay.core.config_check import production_problems
from assay.core.config_view import masked_settings
from assay.core.db import Database
from assay.core.dev_cli import dev_app
from assay.core.logging import configure_logging
from assay.core.migrations import prepare_database
from assay.core.secrets_store import with_generated_secrets
from assay.core.tracing import integration_problems
from assay.demo import DEFAULT_PACK as DEMO_PACK
from assay.demo import create_demo, demo, prepare_pack, print_demo
from assay.jobs.cli import jobs_app
from assay.jobs.queue import broker_problems
from assay.keys.cli import data_keys_app
from assay.mock_providers.background import BackgroundMock, serve_in_background
from assay.mock_providers.cli import mock_providers
from assay.mock_target.background import BackgroundTarget
from assay.mock_target.background import serve_in_background as serve_mock_target
from assay.mock_target.cli import mock_target
from assay.orgs.cli import create_admin, org_app
from assay.providers.cli import providers_app
from assay.redteam.cli import redteam_app
from assay.registry.cli import keys_app, models_app
from assay.scans.cli import scans_app
from assay.scans.planning import probe_set_problems
from assay.server import ServerStartError, run_factory
from assay.settings import Environment, Settings, load_settings
from assay.worker import run_worker

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Assay: a secure, audited, multi-tenant scoring platform.",
    pretty_exceptions_enable=False,
)
migrate_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Apply or inspect database migrations."
)
config_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Inspect and check the configuration."
)
app.add_typer(migrate_app, name="migrate")
app.add_typer(config_app, name="config")
# `assay admin`: administrators and organisations (orgs), users' accounts (accounts).
admin_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Manage administrators and users."
)
admin_app.command("create")(create_admin)
admin_app.command("reset-password")(reset_password)
admin_app.command("unlock")(unlock)
admin_app.command("disable")(disable)
admin_app.add_typer(org_app, name="org")
app.add_typer(admin_app, name="admin")
app.add_typer(models_app, name="models")
app.add_typer(keys_app, name="keys")
app.add_typer(data_keys_app, name="data-keys")
app.add_typer(jobs_app, name="jobs")
app.add_typer(providers_app, name="providers")
app.add_typer(scans_app, name="scans")
app.add_typer(redteam_app, name="redteam")
app.add_typer(audit_app, name="audit")
app.command()(backup)
app.command()(restore)
app.command("demo")(demo)
app.command("mock-providers")(mock_providers)
app.command("mock-target")(mock_target)
app.add_typer(dev_app, name="dev")


@app.callback()
def _logging_to_stderr() -> None:
    """Keep stdout for command output; log lines (security events...) go to stderr."""
    try:
        configure_logging(load_settings(), stream=sys.stderr)
    except (ValidationError, SettingsError):
        return  # the command itself reports the invalid setting


def _setting_default(name: str) -> str:
    """What an option left out falls back to: the setting, with its own default."""
    return f"ASSAY_{name.upper()}, else {Settings.model_fields[name].default}"


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        typer.echo("The configuration is invalid:", err=True)
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            typer.echo(f"  - ASSAY_{field.upper()}: {message}", err=True)
        raise typer.Exit(EXIT_CONFIG_PROBLEM) from None
    except SettingsError as exc:
        # A missing or malformed TOML file, or a JSON setting that does not parse.
        raise _fail("The configuration is invalid:", [str(exc)]) from None


def _fail(title: str, problems: list[str]) -> typer.Exit:
    typer.echo(title, err=True)
    for problem in problems:
        typer.echo(f"  - {problem}", err=True)
    return typer.Exit(EXIT_CONFIG_PROBLEM)


async def _with_database(settings: Settings, action: str, revision: str = "head") -> None:
    database = Database(settings)
    try:
        if action == "prepare":
            await prepare_database(database.engine, settings)
        elif action == "upgrade":
            await migrations.upgrade(database.engine, revision)
        elif action == "downgrade":
            await migrations.downgrade(database.engine, revision)
        elif action == "revision":
            await migrations.autogenerate_revision(database.engine, revision)
        elif action == "current":
            state = await migrations.migration_state(database.engine)
            current = ", ".join(state.current) or "(none)"
            suffix = " (head)" if state.is_current else f" (head is {', '.join(state.heads)})"
            typer.echo(current + suffix)
    finally:
        await database.dispose()


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address.", show_default=_setting_default("host"))
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Bind port.", show_default=_setting_default("port"))
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes.", show_default=_setting_default("workers")),
    ] = None,
    reload: Annotated[
        bool, typer.Option(help="Restart on code changes (development only).")
    ] = False,
    with_demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="First create the demo organisation, pack and API key (development)."
        ),
    ] = False,
) -> None:
    """Start the HTTP server."""
    settings = _settings(host=host, port=port, workers=workers)
    # In any environment: a setting that needs an extra which is not installed.
    problems = integration_problems(settings) + broker_problems(settings)
    problems += probe_set_problems(settings.redteam_probe_directories)
    if settings.is_production:
        problems = production_problems(settings) + problems
        if reload:
            problems.append("--reload is for development.")
        if problems:
            raise _fail("Refusing to start in production:", problems)
    elif problems:
        raise _fail("Refusing to start:", problems)
    if with_demo and settings.is_production:
        raise _fail("Refusing to start:", ["--demo is for development machines."])
    # `--demo`: the mock AI target first, so the demo's targets can name its port.
    target_mock = _demo_target() if with_demo else None
    try:
        _serve_checked(settings, host, port, workers, reload, target_mock)
    finally:
        if target_mock is not None:
            target_mock.stop()


def _serve_checked(
    settings: Settings,
    host: str | None,
    port: int | None,
    workers: int | None,
    reload: bool,
    target_mock: BackgroundTarget | None,
) -> None:
    with_demo = target_mock is not None
    # Every dependency is checked here, before uvicorn starts, so that a failure is one
    # line naming it rather than a worker's stack trace.
    with reported_failures("Refusing to start:", settings):
        settings = with_generated_secrets(settings)
        asyncio.run(_with_database(settings, "prepare"))
        asyncio.run(check_cache(settings))
        if target_mock is not None:
            pack = prepare_pack(DEMO_PACK, settings)
            created = create_demo(settings, pack, mock_target_url=target_mock.base_url)
            print_demo(asyncio.run(created), settings)
    # The application is built again inside uvicorn (in each worker) from the
    # environment: the command line's choices must reach it there too, or it would
    # think it listens on the default port (links in mails, the token audience).
    for name, value in (("host", host), ("port", port), ("workers", workers)):
        if value is not None:
            os.environ[f"ASSAY_{name.upper()}"] = str(value)
    mock = _demo_providers() if with_demo else None
    try:
        run_factory(settings, reload=reload)
    except ServerStartError as exc:
        raise _fail("Refusing to start:", [str(exc)]) from None
    finally:
        if mock is not None:
            mock.stop()


def _allow_loopback() -> None:
    """The demo's mocks live on loopback, which outbound requests may reach only when
    allowed: add 127.0.0.1/32 to what the environment allows."""
    allowed = os.environ.get("ASSAY_OUTBOUND_ALLOWED_NETWORKS", "").strip()
    networks = json.loads(allowed) if allowed.startswith("[") else allowed.split(",")
    networks = [n.strip() for n in networks if n.strip()]
    if "127.0.0.1/32" not in networks:
        networks.append("127.0.0.1/32")
    os.environ["ASSAY_OUTBOUND_ALLOWED_NETWORKS"] = json.dumps(networks)


def _demo_target() -> BackgroundTarget:
    """`--demo`: the FAKE vulnerable and refusing AI models on a loopback port."""
    try:
        target = serve_mock_target()
    except RuntimeError as exc:
        raise _fail("Refusing to start:", [str(exc)]) from None
    _allow_loopback()
    typer.echo(f"Mock AI target (FAKE models) for the demo on {target.base_url}")
    return target


def _demo_providers() -> BackgroundMock | None:
    """`--demo`: the offline mock providers on a loopback port, and the server's built-in
    providers pointed at them (unless ASSAY_PROVIDER_BASE_URLS already says where)."""
    if os.environ.get("ASSAY_PROVIDER_BASE_URLS"):
        return None
    try:
        mock = serve_in_background()
    except RuntimeError as exc:
        raise _fail("Refusing to start:", [str(exc)]) from None
    os.environ["ASSAY_PROVIDER_BASE_URLS"] = json.dumps(mock.base_urls)
    _allow_loopback()
    typer.echo(f"Mock providers (FAKE data) for the demo on {mock.base_urls['virustotal']}")
    return mock


_MIGRATE_FAILURE_TITLES = {
    "upgrade": "Cannot upgrade the database:",
    "downgrade": "Cannot downgrade the database:",
    "revision": "Cannot generate a migration:",
    "current": "Cannot read the database's revision:",
}


def _migrate(action: str, revision: str = "head") -> None:
    settings = _settings()
    with reported_failures(_MIGRATE_FAILURE_TITLES[action], settings):
        asyncio.run(_with_database(settings, action, revision))


# Relative targets such as -1 look like options to the parser; they are revisions here.
_RELATIVE_REVISIONS = {"ignore_unknown_options": True}


@migrate_app.command(context_settings=_RELATIVE_REVISIONS)
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. head or +1.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    _migrate("upgrade", revision)
    typer.echo(f"Upgraded to {revision}.")


@migrate_app.command(context_settings=_RELATIVE_REVISIONS)
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")],
) -> None:
    """Revert migrations down to REVISION (-1: one step back)."""
    _migrate("downgrade", revision)
    typer.echo(f"Downgraded to {revision}.")


@migrate_app.command()
def revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the change does.")],
) -> None:
    """(Developers) Generate a migration from the model changes; the database must be at head."""
    _migrate("revision", message)


@migrate_app.command()
def current() -> None:
    """Show the revision the database is at."""
    _migrate("current")


@migrate_app.command()
def history() -> None:
    """List every shipped migration, newest first."""
    for revision in migrations.history():
        typer.echo(
            f"{revision.down_revision or '<base>'} -> {revision.revision}  {revision.message}"
        )


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings as JSON, with every secret masked."""
    typer.echo(json.dumps(masked_settings(_settings()), indent=2, sort_keys=True))


@config_app.command("check")
def config_check() -> None:
    """List every problem that would stop a production start; exit 2 if there is one."""
    settings = _settings().model_copy(update={"env": Environment.PRODUCTION, "auto_migrate": False})
    # Configuration and dependencies alike: every problem, not just those of one kind.
    problems = production_problems(settings)
    problems.extend(integration_problems(settings))
    problems.extend(broker_problems(settings))
    problems.extend(asyncio.run(readiness_problems(settings)))
    if problems:
        raise _fail("Not ready for production:", problems)
    typer.echo("No problems found.")


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Jobs worked on at once.",
            show_default=_setting_default("jobs_worker_concurrency"),
        ),
    ] = None,
) -> None:
    """Run jobs from the broker (ASSAY_JOBS_BROKER) until SIGTERM; then finish or release
    the chunk in progress at its next checkpoint and exit."""
    settings = _settings(jobs_worker_concurrency=concurrency)
    if settings.jobs_broker is None:
        raise _fail(
            "assay worker needs a broker:",
            [
                "set ASSAY_JOBS_BROKER (redis://... or amqp://...); without one, `assay serve` "
                "runs jobs itself"
            ],
        )
    problems = broker_problems(settings) + integration_problems(settings)
    if problems:
        raise _fail("assay worker cannot start:", problems)
    with reported_failures("assay worker stopped:", settings):
        asyncio.run(run_worker(with_generated_secrets(settings), settings.jobs_worker_concurrency))


@app.command()
def version() -> None:
    """Print the Assay version."""
    typer.echo(__version__)
