"""Every `assay` command's --help, and the exit statuses docs/running.md promises.

Walks the whole command tree, so a new command is checked without being listed here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()


# Typer carries its own copy of click's classes, so these go by behaviour, not by class.
def _subcommand(group: Any, name: str) -> Any:
    command = group.get_command(group.context_class(group), name)
    assert command is not None, name
    return command


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(group, "list_commands"):
        for name in group.list_commands(group.context_class(group)):
            yield from _commands(_subcommand(group, name), (*path, name))


ALL_COMMANDS = sorted(_commands(typer.main.get_command(app)))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSAY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_the_walk_finds_every_command_group() -> None:
    names = {" ".join(path) for path in ALL_COMMANDS}
    assert {"serve", "demo", "admin create", "admin org set-quota", "models import"} <= names
    assert len(ALL_COMMANDS) > 20


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "assay")
def test_every_command_has_readable_help(clean_env: Path, path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    # A flag takes no value: its help must not show one (typer's rich help did: <bool>).
    assert "<bool>" not in result.stdout
    command = typer.main.get_command(app)
    for name in path:
        command = _subcommand(command, name)
    assert command.help or command.short_help, f"{path} has no description"
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"


def test_serve_help_shows_what_each_left_out_option_falls_back_to(clean_env: Path) -> None:
    text = runner.invoke(app, ["serve", "--help"]).stdout
    for shown in ("ASSAY_HOST, else 127.0.0.1", "ASSAY_PORT, else 8000", "ASSAY_WORKERS, else 1"):
        assert shown in " ".join(text.split()), text
    assert "--demo " in text


def test_a_usage_error_exits_2(clean_env: Path) -> None:
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2
    assert runner.invoke(app, ["serve", "--port", "not-a-number"]).exit_code == 2


def test_an_operator_error_exits_2_with_one_line_and_no_trace(clean_env: Path) -> None:
    assert runner.invoke(app, ["migrate", "upgrade"]).exit_code == 0
    unknown = runner.invoke(app, ["admin", "unlock", "--email", "nobody@example.org"])
    assert unknown.exit_code == 2, unknown.output
    assert "no user with email nobody@example.org" in unknown.output
    assert "Traceback" not in unknown.output
    missing_org = runner.invoke(
        app, ["admin", "org", "set-quota", "--org", "nope", "--quota", "5/minute"]
    )
    assert missing_org.exit_code == 2, missing_org.output
    assert "nope" in missing_org.output
    assert "Traceback" not in missing_org.output


def test_database_commands_print_no_alembic_chatter(clean_env: Path) -> None:
    result = runner.invoke(app, ["migrate", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "Context impl" not in result.output
    assert "Will assume" not in result.output


def test_serve_hands_its_host_and_port_to_the_application_it_starts(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ASSAY_PUBLIC_URL, links and the token audience follow `--port`/`--host`:
    the application uvicorn builds (from the environment) sees the same address."""
    seen: list[str] = []
    for name in ("ASSAY_HOST", "ASSAY_PORT", "ASSAY_WORKERS"):
        # serve writes these for the server it starts; undone after the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    def run_factory(settings: object, *, reload: bool = False) -> None:
        from assay.app import app_from_environment

        seen.append(app_from_environment().state.settings.public_url)

    monkeypatch.setattr("assay.cli.run_factory", run_factory)
    result = runner.invoke(app, ["serve", "--port", "8765", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert seen == ["http://127.0.0.1:8765"]
    monkeypatch.setenv("ASSAY_PUBLIC_URL", "https://assay.example.org")
    seen.clear()
    assert runner.invoke(app, ["serve", "--port", "8766"]).exit_code == 0
    assert seen == ["https://assay.example.org"]
