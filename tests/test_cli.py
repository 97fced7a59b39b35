from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from assay import __version__
from assay.cli import app
from assay.core import migrations

from .conftest import make_database_url, new_secret, require_service

runner = CliRunner()
ASSAY = str(Path(sys.executable).parent / "assay")


def _strong_production_env(database_url: str) -> dict[str, str]:
    return {
        "ASSAY_ENV": "production",
        "ASSAY_PUBLIC_URL": "https://assay.example.org",
        "ASSAY_DATABASE_URL": database_url,
        "ASSAY_SMTP_HOST": "smtp.internal",
        "ASSAY_TOKEN_SIGNING_KEY": new_secret(),
        "ASSAY_SESSION_SECRET": new_secret(),
        "ASSAY_ENCRYPTION_KEY": new_secret(),
    }


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSAY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_version_prints_the_package_version(clean_env: Path) -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


@pytest.mark.parametrize(
    "command", [[], ["migrate"], ["config"], ["serve"], ["migrate", "upgrade"]]
)
def test_every_command_has_help(clean_env: Path, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_config_show_masks_every_secret(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = new_secret()
    env = _strong_production_env(f"postgresql://assay:{password}@db.internal/assay")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["env"] == "production"
    for name in ("ASSAY_TOKEN_SIGNING_KEY", "ASSAY_SESSION_SECRET", "ASSAY_ENCRYPTION_KEY"):
        assert env[name] not in result.stdout
    assert password not in result.stdout


def test_config_check_lists_every_problem_of_the_defaults(clean_env: Path) -> None:
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 2
    assert "Not ready for production" in result.stderr
    for expected in ("ASSAY_TOKEN_SIGNING_KEY", "ASSAY_SESSION_SECRET", "SQLite", "https"):
        assert expected in result.stderr


def test_invalid_setting_is_named_not_a_stack_trace(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_PORT", "not-a-number")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "ASSAY_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_commands_and_config_check_on_postgresql(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI runs its own event loop, so this test must not run inside one.
    url, drop = asyncio.run(make_database_url("postgresql", clean_env))
    assert drop is not None
    try:
        for name, value in _strong_production_env(url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("ASSAY_DEBUG", "true")
        unmigrated = runner.invoke(app, ["config", "check"])
        assert unmigrated.exit_code == 2
        # A configuration problem does not hide the database's.
        assert "ASSAY_DEBUG is on" in unmigrated.stderr
        assert "assay migrate upgrade" in unmigrated.stderr
        monkeypatch.delenv("ASSAY_DEBUG")

        assert runner.invoke(app, ["migrate", "upgrade"]).exit_code == 0
        current = runner.invoke(app, ["migrate", "current"])
        assert current.exit_code == 0
        assert "(head)" in current.stdout

        checked = runner.invoke(app, ["config", "check"])
        assert checked.exit_code == 0, checked.stderr
        assert "No problems found" in checked.stdout

        history = runner.invoke(app, ["migrate", "history"])
        assert "organisations" in history.stdout

        assert runner.invoke(app, ["migrate", "downgrade", "base"]).exit_code == 0
        assert "(none)" in runner.invoke(app, ["migrate", "current"]).stdout
    finally:
        asyncio.run(drop())


def _use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _refused(result: Result, *expected: str) -> str:
    """The command ended with status 2 and named the problem: no stack trace."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize("command", [["serve"], ["migrate", "current"], ["migrate", "upgrade"]])
def test_an_unreachable_mariadb_is_named_not_a_stack_trace(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    _use(monkeypatch, ASSAY_DATABASE_URL="mysql://root@127.0.0.1:1/assay")
    _refused(
        runner.invoke(app, command),
        "The database mysql://root@127.0.0.1:1/assay is unreachable",
        "Can't connect",
    )


@pytest.mark.parametrize("command", [["serve"], ["migrate", "upgrade"]])
def test_a_postgresql_role_that_does_not_exist_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    require_service("postgresql")
    password = new_secret()
    url = f"postgresql://no_such_role:{password}@127.0.0.1:5432/test"
    _use(monkeypatch, ASSAY_DATABASE_URL=url)
    stderr = _refused(runner.invoke(app, command), 'role "no_such_role" does not exist')
    assert password not in stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("oracle://scott@db.internal/orcl", "unsupported database 'oracle'"),
        ("garbage", "not a database URL"),
    ],
)
@pytest.mark.parametrize("command", [["serve"], ["config", "check"], ["migrate", "current"]])
def test_an_unsupported_or_unparsable_database_url_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], url: str, expected: str
) -> None:
    _use(monkeypatch, ASSAY_DATABASE_URL=url)
    _refused(runner.invoke(app, command), "ASSAY_DATABASE_URL", expected)


@pytest.mark.parametrize("command", [["serve"], ["config", "check"], ["config", "show"]])
def test_a_trusted_proxy_that_is_not_a_network_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    _use(monkeypatch, ASSAY_TRUSTED_PROXIES="10.0.0.0/8,notanip")
    _refused(runner.invoke(app, command), "ASSAY_TRUSTED_PROXIES", "notanip")


def test_a_data_directory_that_cannot_be_created_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = clean_env / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    _use(monkeypatch, ASSAY_DATA_DIR=str(blocker / "data"))
    _refused(runner.invoke(app, ["serve"]), "Refusing to start", f"Cannot use {blocker}")


def test_a_damaged_secret_file_is_named(clean_env: Path) -> None:
    secrets_dir = clean_env / "data" / "secrets"
    secrets_dir.mkdir(parents=True, mode=0o700)
    damaged = secrets_dir / "token_signing_key"
    damaged.write_text("", encoding="utf-8")
    damaged.chmod(0o600)
    _refused(runner.invoke(app, ["serve"]), "Refusing to start", str(damaged), "Delete it")


def test_an_unreachable_redis_is_named_before_the_server_starts(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = new_secret()
    _use(monkeypatch, ASSAY_REDIS_URL=f"redis://:{password}@127.0.0.1:1/0")
    stderr = _refused(
        runner.invoke(app, ["serve"]), "Refusing to start", "Redis is unreachable at redis://"
    )
    assert password not in stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [("port = [unclosed\n", "is not valid TOML"), (None, "does not exist")],
)
@pytest.mark.parametrize("command", [["serve"], ["config", "show"], ["migrate", "current"]])
def test_a_missing_or_malformed_settings_file_is_named(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    content: str | None,
    expected: str,
) -> None:
    config = clean_env / "assay.toml"
    if content is not None:
        config.write_text(content, encoding="utf-8")
    _use(monkeypatch, ASSAY_CONFIG_FILE=str(config))
    _refused(runner.invoke(app, command), "The configuration is invalid", str(config), expected)


@pytest.mark.parametrize(
    ("command", "title"),
    [
        (["migrate", "upgrade", "no_such_revision"], "Cannot upgrade the database"),
        (["migrate", "downgrade", "no_such_revision"], "Cannot downgrade the database"),
    ],
)
def test_an_unknown_migration_revision_is_named(
    clean_env: Path, command: list[str], title: str
) -> None:
    assert runner.invoke(app, ["migrate", "upgrade"]).exit_code == 0
    _refused(runner.invoke(app, command), title, "no_such_revision")


def test_migrate_downgrade_minus_one_steps_back_one_revision(clean_env: Path) -> None:
    newest_first = [revision.revision for revision in migrations.history()]
    assert len(newest_first) >= 2
    assert runner.invoke(app, ["migrate", "upgrade"]).exit_code == 0

    stepped = runner.invoke(app, ["migrate", "downgrade", "-1"])
    assert stepped.exit_code == 0, stepped.stderr
    current = runner.invoke(app, ["migrate", "current"]).stdout
    assert current.startswith(f"{newest_first[1]} (head is {newest_first[0]})"), current

    forward = runner.invoke(app, ["migrate", "upgrade", "+1"])
    assert forward.exit_code == 0, forward.stderr
    assert runner.invoke(app, ["migrate", "current"]).stdout.strip() == f"{newest_first[0]} (head)"


def test_config_check_lists_configuration_and_database_problems_together(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, ASSAY_REDIS_URL="redis://127.0.0.1:1/0")
    stderr = _refused(runner.invoke(app, ["config", "check"]), "Not ready for production")
    for expected in (
        "ASSAY_TOKEN_SIGNING_KEY is not set",
        "ASSAY_PUBLIC_URL is not https",
        "The SQLite database",
        "does not exist; run `assay migrate upgrade`",
        "Redis is unreachable at redis://127.0.0.1:1/0",
    ):
        assert expected in stderr
    assert not (clean_env / "data").exists(), "a check must not create the database"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update({"ASSAY_DATA_DIR": str(tmp_path / "data"), "ASSAY_METRICS_PORT": "0"})
    env.update(values)
    return env


@pytest.mark.slow
def test_production_serve_without_secrets_exits_listing_every_problem(
    tmp_path: Path, free_port: int
) -> None:
    env = _env(tmp_path, ASSAY_ENV="production", ASSAY_PORT=str(free_port))
    process = subprocess.Popen(
        [ASSAY, "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            assert not _listening(free_port), "a refused production start must not listen"
            time.sleep(0.05)
        _, stderr = process.communicate(timeout=5)
    finally:
        process.kill()
    assert process.returncode == 2
    text = stderr.decode()
    for expected in (
        "ASSAY_TOKEN_SIGNING_KEY is not set",
        "ASSAY_SESSION_SECRET is not set",
        "ASSAY_ENCRYPTION_KEY is not set",
        "SQLite",
        "ASSAY_PUBLIC_URL is not https",
    ):
        assert expected in text
    assert not _listening(free_port)
    assert not (tmp_path / "data" / "secrets").exists()


@pytest.mark.slow
def test_development_serve_starts_on_embedded_defaults_and_reuses_its_secrets(
    tmp_path: Path, free_port: int
) -> None:
    env = _env(tmp_path, ASSAY_PORT=str(free_port))
    secrets_seen: list[str] = []
    for _ in range(2):
        process = subprocess.Popen(
            [ASSAY, "serve"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            status = None
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    status = httpx.get(
                        f"http://127.0.0.1:{free_port}/readyz", timeout=1
                    ).status_code
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert status == 200
            secrets_seen.append((tmp_path / "data" / "secrets" / "session_secret").read_text())
        finally:
            process.terminate()
            process.wait(timeout=20)
        assert process.returncode == 0
    assert (tmp_path / "data" / "assay.db").exists()
    assert secrets_seen[0] == secrets_seen[1]
