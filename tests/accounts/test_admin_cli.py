"""`assay admin`: bootstrap with no default credentials, and operator recovery."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from assay.accounts.models import User
from assay.cli import app
from assay.core.db import Database
from assay.orgs.models import Membership, Organisation
from assay.settings import Settings
from tests.support.identity import strong_password

from ..conftest import KNOWN_SECRETS, make_migrated_database_url, new_secret

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # Migrated already (a copy of this process's template): these tests are about the CLI.
    url, drop = asyncio.run(make_migrated_database_url(request.param, tmp_path))
    env = {
        "ASSAY_DATA_DIR": str(tmp_path / "data"),
        "ASSAY_DATABASE_URL": url,
        "ASSAY_TOKEN_SIGNING_KEY": new_secret(),
        "ASSAY_SESSION_SECRET": new_secret(),
        "ASSAY_ENCRYPTION_KEY": new_secret(),
        "ASSAY_ARGON2_MEMORY_KIB": "1024",
        "ASSAY_ARGON2_TIME_COST": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    yield settings
    if drop is not None:
        asyncio.run(drop())


def _user(settings: Settings, email: str) -> User | None:
    async def load() -> User | None:
        database = Database(settings)
        try:
            async with database.sessionmaker() as db:
                return (
                    await db.execute(select(User).where(User.email == email))
                ).scalar_one_or_none()
        finally:
            await database.dispose()

    return asyncio.run(load())


def test_fresh_install_has_no_account(cli_env: Settings) -> None:
    async def count() -> int:
        database = Database(cli_env)
        try:
            async with database.sessionmaker() as db:
                return len((await db.execute(select(User.id))).all())
        finally:
            await database.dispose()

    assert asyncio.run(count()) == 0


def test_create_admin_with_generated_password_and_organisation(cli_env: Settings) -> None:
    result = runner.invoke(
        app,
        [
            "admin",
            "create",
            "--email",
            "Ops@Example.org",
            "--org",
            "Flash Ventures",
            "--generate-password",
        ],
    )
    assert result.exit_code == 0, result.output
    password = re.search(r"One-time password .*: (\S+)", result.stdout).group(1)  # type: ignore[union-attr]
    KNOWN_SECRETS.add(password)
    assert len(password) >= 20
    user = _user(cli_env, "ops@example.org")
    assert user is not None
    assert user.is_platform_admin
    assert user.must_change_password
    assert password not in (user.password_hash or "")

    async def membership() -> str:
        database = Database(cli_env)
        try:
            async with database.sessionmaker() as db:
                from assay.core.tenancy import across_tenants

                row = (
                    await db.execute(
                        across_tenants(
                            select(Membership.role, Organisation.slug).join(
                                Organisation, Organisation.id == Membership.org_id
                            ),
                            "test",
                        )
                    )
                ).one()
                return f"{row[0]}@{row[1]}"
        finally:
            await database.dispose()

    assert asyncio.run(membership()) == "owner@flash-ventures"


def test_create_admin_reads_the_password_from_stdin_and_applies_the_policy(
    cli_env: Settings,
) -> None:
    weak = runner.invoke(app, ["admin", "create", "--email", "a@example.org"], input="short\n")
    assert weak.exit_code == 2
    assert "at least 15 characters" in weak.stderr
    password = strong_password()
    ok = runner.invoke(app, ["admin", "create", "--email", "a@example.org"], input=password + "\n")
    assert ok.exit_code == 0, ok.output
    assert password not in ok.output
    again = runner.invoke(
        app, ["admin", "create", "--email", "a@example.org"], input=password + "\n"
    )
    assert again.exit_code == 2
    assert "exists" in again.stderr


def test_unlock_reset_and_disable(cli_env: Settings) -> None:
    password = strong_password()
    runner.invoke(app, ["admin", "create", "--email", "b@example.org"], input=password + "\n")

    async def lock() -> None:
        database = Database(cli_env)
        try:
            async with database.sessionmaker() as db:
                user = (
                    await db.execute(select(User).where(User.email == "b@example.org"))
                ).scalar_one()
                user.hard_locked = True
                user.password_failures = 60
                await db.commit()
        finally:
            await database.dispose()

    asyncio.run(lock())
    assert runner.invoke(app, ["admin", "unlock", "--email", "b@example.org"]).exit_code == 0
    user = _user(cli_env, "b@example.org")
    assert user is not None
    assert not user.hard_locked
    assert user.password_failures == 0

    reset = runner.invoke(
        app, ["admin", "reset-password", "--email", "b@example.org", "--generate-password"]
    )
    assert reset.exit_code == 0
    KNOWN_SECRETS.add(reset.stdout.rsplit(": ", 1)[-1].strip())
    user = _user(cli_env, "b@example.org")
    assert user is not None
    assert user.must_change_password

    assert runner.invoke(app, ["admin", "disable", "--email", "b@example.org"]).exit_code == 0
    user = _user(cli_env, "b@example.org")
    assert user is not None
    assert user.status == "disabled"
    missing = runner.invoke(app, ["admin", "unlock", "--email", "nobody@example.org"])
    assert missing.exit_code == 2
