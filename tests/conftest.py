"""Shared fixtures: real databases (SQLite, PostgreSQL, MariaDB), real Redis, the app."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncmy  # type: ignore[import-untyped]
import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from assay.app import create_app
from assay.core.db import create_engine_for, make_private_sqlite_file
from assay.core.logging import configure_logging, get_logger
from assay.core.migrations import upgrade
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.settings import Settings
from tests.support.outbound import LoopbackOnlyBackend, StubResolver
from tests.support.rate_window import wait_for_steady_rate_window
from tests.support.session_checks import (
    remember_tmp_path_factory,
    schemathesis_problems,
    write_schemathesis_report,
)

# Fixtures every package's tests share: members and sign-in, registered models, trained packs,
# the mock threat-intelligence providers.
pytest_plugins = [
    "tests.support.identity",
    "tests.support.models",
    "tests.support.engine",
    "tests.support.mock_providers",
]

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SERVICES = {
    "postgresql": ("127.0.0.1", 5432),
    "mariadb": ("127.0.0.1", 3306),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
}
REDIS_URL = "redis://127.0.0.1:6379/15"

# Every secret a test hands to Assay; the session fails if one reaches the log.
KNOWN_SECRETS: set[str] = set()
# One file per process: runs side by side, and pytest-xdist's workers, must not truncate
# each other's capture. It is removed after a clean check and kept (its path printed)
# when the check fails. ASSAY_TEST_LOG names it; each xdist worker adds its id.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
LOG_CAPTURE_PATH = (
    Path(os.environ["ASSAY_TEST_LOG"] + (f".{_XDIST_WORKER}" if _XDIST_WORKER else ""))
    if os.environ.get("ASSAY_TEST_LOG")
    else Path(tempfile.gettempdir()) / f"assay-test-run-{os.getpid()}.log"
)


def service_reachable(name: str) -> bool:
    host, port = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip locally when a service is down; in CI a missing service is a failure."""
    if service_reachable(name):
        return
    if IN_CI:
        pytest.fail(f"{name} is not reachable at {SERVICES[name]} and CI=true")
    pytest.skip(f"{name} is not running")


def new_secret() -> str:
    value = secrets.token_urlsafe(40)
    KNOWN_SECRETS.add(value)
    return value


# --- whole-run log capture ---------------------------------------------------------------


def _not_the_test_client(record: logging.LogRecord) -> bool:
    """Drop httpx's line for each request the in-process test client sends.

    That line is the test's own URL (a test that proves keys in a query string are
    refused puts one there on purpose); it is not something Assay logged. Assay's own
    outbound httpx calls never go to ``testserver`` and stay in the capture.
    """
    return not (record.name == "httpx" and "http://testserver/" in record.getMessage())


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    remember_tmp_path_factory(config)
    handler = logging.FileHandler(LOG_CAPTURE_PATH, mode="w", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.addFilter(_not_the_test_client)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    config.stash[_log_handler_key] = handler
    if not hasattr(config, "workerinput"):
        # Under pytest-xdist each worker checks its own capture; a worker's exit status
        # does not reach the run's, so workers write what they found here instead.
        config.stash[_worker_reports_key] = Path(tempfile.mkdtemp(prefix="assay-log-checks-"))


_log_handler_key = pytest.StashKey[logging.Handler]()
_worker_reports_key = pytest.StashKey[Path]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput["assay_log_check_reports"] = str(node.config.stash[_worker_reports_key])


def _log_capture_problems(handler: logging.Handler) -> list[str]:
    """What is wrong with this process's log capture: a broken capture, leaked secrets."""
    # Canary: a line logged the way Assay logs, after Assay set up its logging, must be in
    # the capture; otherwise the capture broke and "no secret found" would prove nothing.
    canary = f"log-capture-canary-{uuid.uuid4().hex}"
    configure_logging(Settings(_env_file=None, env="test"), stream=io.StringIO())  # type: ignore[call-arg]
    get_logger("assay.tests").warning("log_capture_canary", marker=canary)
    handler.flush()
    logging.getLogger().removeHandler(handler)
    handler.close()
    text = LOG_CAPTURE_PATH.read_text(encoding="utf-8", errors="replace")
    problems: list[str] = []
    if canary not in text:
        problems.append(
            f"FAILED: the log capture ({LOG_CAPTURE_PATH}) did not receive Assay's log "
            "lines, so the check for leaked secrets cannot be trusted"
        )
    leaked = sorted(s for s in KNOWN_SECRETS if s in text)
    if leaked:
        problems.append(
            f"FAILED: {len(leaked)} secret(s) used by tests appear in the log ({LOG_CAPTURE_PATH})"
        )
        # Say where, with the secret itself masked, so the leak can be found from CI.
        for number, line in enumerate(text.splitlines(), start=1):
            shown = line
            for secret in leaked:
                shown = shown.replace(secret, "<leaked-secret>")
            if shown != line:
                problems.append(f"  log line {number}: {shown[:300]}")
    if not problems and "ASSAY_TEST_LOG" not in os.environ:
        LOG_CAPTURE_PATH.unlink(missing_ok=True)
    return problems


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    handler = session.config.stash.get(_log_handler_key, None)
    if handler is None:
        return
    problems = _log_capture_problems(handler)
    workerinput = getattr(session.config, "workerinput", None)
    if workerinput is not None:
        reports = Path(workerinput["assay_log_check_reports"])
        report = reports / f"{workerinput['workerid']}.txt"
        report.write_text("\n".join(problems), encoding="utf-8")
        write_schemathesis_report(session, reports, workerinput["workerid"])
        return
    reports = session.config.stash[_worker_reports_key]
    write_schemathesis_report(session, reports, "controller")
    problems.extend(schemathesis_problems(reports))
    for report in sorted(reports.glob("*.txt")):
        problems.extend(line for line in report.read_text(encoding="utf-8").splitlines() if line)
        report.unlink()
    reports.rmdir()
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for line in problems:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- databases ---------------------------------------------------------------------------


async def _create_postgres_database(template: str | None = None) -> tuple[str, Callable[[], Any]]:
    name = f"assay_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(
            f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        )
    finally:
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    return f"postgresql://postgres@127.0.0.1:5432/{name}", drop


async def _create_mariadb_database() -> tuple[str, Callable[[], Any]]:
    name = f"assay_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()

    async def drop() -> None:
        conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()

    return f"mysql://root@127.0.0.1:3306/{name}", drop


async def make_database_url(kind: str, tmp_path: Path) -> tuple[str, Callable[[], Any] | None]:
    """A new, empty database (no tables): for tests of migrating, and of refusing to."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'assay.db'}", None
    require_service(kind)
    if kind == "postgresql":
        return await _create_postgres_database()
    return await _create_mariadb_database()


# --- migrated templates --------------------------------------------------------------------
#
# Running the migrations for every test that needs a schema cost about 0.5 s on SQLite, 1.5 s
# on PostgreSQL and 3-8 s on MariaDB (its DDL commits and rebuilds tables one by one), most
# of the suite's time. Each test process therefore migrates one template per dialect, with
# the shipped migrations, the first time a test asks for it, and each test still gets a
# fresh database of its own, copied from the template: the file on SQLite, CREATE DATABASE
# ... TEMPLATE on PostgreSQL, the template's own CREATE TABLE statements (SHOW CREATE TABLE:
# columns, keys, foreign keys and constraints exactly as migrated) on MariaDB. The app's
# start-up still checks the schema and runs the (now empty) upgrade. Migrating itself is
# tested on empty databases: tests/core/test_migrations.py (any_database_url, every
# revision up and down, the schema compared with the models), tests/test_cli.py.

_TEMPLATES: dict[str, Any] = {}
_TEMPLATE_DIR: list[Path] = []


async def _migrate(url: str) -> None:
    """Run the shipped migrations on ``url`` with the engine the application would use."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, env="test", data_dir=_TEMPLATE_DIR[0], database_url=url
    )
    engine = create_engine_for(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _mariadb_connect(database: str | None = None) -> Any:
    return await asyncmy.connect(
        host="127.0.0.1", port=3306, user="root", password="", database=database, autocommit=True
    )


async def _mariadb_template_schema(name: str) -> dict[str, Any]:
    """The migrated template's tables as statements to replay, and the rows to copy."""
    conn = await _mariadb_connect(name)
    try:
        async with conn.cursor() as cur:
            # Only tables are replayed: a migration that adds a view, trigger or routine
            # must teach this copy to carry it, rather than silently lose it.
            await cur.execute(
                "SELECT (SELECT count(*) FROM information_schema.views WHERE table_schema = %s)"
                " + (SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = %s)"
                " + (SELECT count(*) FROM information_schema.routines WHERE routine_schema = %s)",
                (name, name, name),
            )
            others = (await cur.fetchone())[0]
            assert others == 0, "the migrated MariaDB schema has views, triggers or routines"
            await cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (name,),
            )
            tables = sorted(row[0] for row in await cur.fetchall())
            statements: list[str] = []
            with_rows: list[str] = []
            for table in tables:
                await cur.execute(f"SHOW CREATE TABLE `{table}`")
                statements.append((await cur.fetchone())[1])
                # Names from information_schema, of the template this process made.
                await cur.execute(f"SELECT count(*) FROM `{table}`")  # noqa: S608
                if (await cur.fetchone())[0]:
                    with_rows.append(table)
    finally:
        conn.close()
    return {"name": name, "statements": statements, "with_rows": with_rows}


async def _template(kind: str) -> Any:
    if kind in _TEMPLATES:
        return _TEMPLATES[kind]
    directory = _TEMPLATE_DIR[0]
    if kind == "sqlite":
        path = directory / "template.db"
        await _migrate(f"sqlite:///{path}")
        # Closing the last connection checkpoints the WAL into the file and removes it.
        assert not path.with_name(path.name + "-wal").exists()
        _TEMPLATES[kind] = path
        return path
    create = _create_postgres_database if kind == "postgresql" else _create_mariadb_database
    url, drop = await create()
    name = url.rsplit("/", 1)[1]
    try:
        await _migrate(url)
        template: dict[str, Any] = {"name": name, "drop": drop}
        if kind == "mariadb":
            template.update(await _mariadb_template_schema(name))
    except BaseException:
        await drop()
        raise
    _TEMPLATES[kind] = template
    return template


async def _copy_mariadb_template(template: dict[str, Any]) -> tuple[str, Callable[[], Any]]:
    url, drop = await _create_mariadb_database()
    name = url.rsplit("/", 1)[1]
    conn = await _mariadb_connect(name)
    try:
        async with conn.cursor() as cur:
            # The statements come in name order; foreign keys are checked again by the
            # first row written, not by CREATE TABLE.
            await cur.execute("SET SESSION foreign_key_checks = 0")
            for statement in template["statements"]:
                await cur.execute(statement)
            for table in template["with_rows"]:
                # Names of the template's own tables.
                source = f"`{template['name']}`.`{table}`"
                await cur.execute(f"INSERT INTO `{table}` SELECT * FROM {source}")  # noqa: S608
    except BaseException:
        await drop()
        raise
    finally:
        conn.close()
    return url, drop


async def make_migrated_database_url(
    kind: str, tmp_path: Path
) -> tuple[str, Callable[[], Any] | None]:
    """A new database of its own, at the migrations' head (copied from this process's template)."""
    if kind != "sqlite":
        require_service(kind)
    template = await _template(kind)
    if kind == "sqlite":
        path = tmp_path / "assay.db"
        make_private_sqlite_file(path)
        shutil.copyfile(template, path)
        return f"sqlite:///{path}", None
    if kind == "postgresql":
        return await _create_postgres_database(template=template["name"])
    return await _copy_mariadb_template(template)


@pytest.fixture(scope="session", autouse=True)
def _migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Where this process keeps its templates, and their removal at the end of the run."""
    _TEMPLATE_DIR[:] = [tmp_path_factory.mktemp("migrated-templates")]
    yield
    for template in list(_TEMPLATES.values()):
        if isinstance(template, dict):
            asyncio.run(template["drop"]())
    _TEMPLATES.clear()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database per test, at the migrations' head, on SQLite, PostgreSQL and MariaDB."""
    url, drop = await make_migrated_database_url(request.param, tmp_path)
    yield url
    if drop is not None:
        await drop()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database per test (no tables yet), on every supported dialect."""
    url, drop = await make_database_url(request.param, tmp_path)
    yield url
    if drop is not None:
        await drop()


@pytest.fixture
def steady_rate_window() -> None:
    """For tests that count requests up to a limit: start well inside one window."""
    wait_for_steady_rate_window()


@pytest.fixture
def redis_url() -> str:
    require_service("redis")
    return REDIS_URL


# --- application -------------------------------------------------------------------------


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    # One encryption secret for every app a test builds: apps sharing a database share its
    # data keys, which are wrapped under this secret (docs/keys.md); another one is refused.
    encryption_key = new_secret()

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "data_dir": tmp_path / "data",
            "metrics_port": 0,
            "token_signing_key": new_secret(),
            "session_secret": new_secret(),
            "encryption_key": encryption_key,
            # Cheap hashing keeps the suite fast; production values are checked by
            # config_check and exercised in tests/auth/test_passwords.py.
            "argon2_memory_kib": 1024,
            "argon2_time_cost": 1,
            # Identity tests sign in far more often than a person would; the limits
            # themselves are tested in tests/security/test_rate_limits.py.
            "rate_limit_auth_per_address": "100000/minute",
            "rate_limit_auth_per_account": "100000/minute",
            # Webhook tests run the dispatcher's steps themselves, with their own clock;
            # tests/webhooks/test_dispatcher_loop.py runs the loop.
            "webhook_dispatcher_enabled": False,
            # Watchlist tests run the checker's pass themselves, at a time they choose.
            "watchlist_checker_enabled": False,
            # Audit tests seal the chain themselves (verify and export seal first too).
            "audit_chainer_enabled": False,
            # Audited reads wait in their buffer until a test flushes them or the app
            # stops: a timed flush would land inside whatever request runs then (the
            # no-GET-writes walker would see it as that request's write).
            "audit_reads_flush_seconds": 60,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], database_url: str) -> Settings:
    return settings_factory(database_url=database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    # Webhook URLs resolve through a stub and connections dial loopback only, so no test
    # (schemathesis included) looks a name up or sends a packet off this machine.
    outbound = OutboundClient(
        OutboundPolicy.from_settings(settings),
        resolver=StubResolver(),
        network_backend=LoopbackOnlyBackend(),
    )
    application.state.webhooks.outbound = outbound
    application.state.providers.caller.outbound = outbound
    application.state.targets.client.outbound = outbound
    forwarder = application.state.audit_trail.forwarder
    if forwarder is not None and hasattr(forwarder.sink, "outbound"):
        forwarder.sink.outbound = outbound
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def free_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
