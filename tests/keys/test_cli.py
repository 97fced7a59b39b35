"""`assay data-keys`: status, rotate, reencrypt (stopped, then continued) and retire,
against the app's own database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from assay.cli import app as cli_app
from assay.cli_support import EXIT_CONFIG_PROBLEM
from assay.settings import Settings
from tests.keys.test_lifecycle import _seal_credential
from tests.support.identity import MakeMember, bearer, login


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}",
        key_refresh_seconds=0,
        keys_reencrypt_in_process=False,
    )


def _runner(app: FastAPI) -> Any:
    settings = app.state.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(
        {
            "ASSAY_ENV": "test",
            "ASSAY_DATA_DIR": str(settings.data_dir),
            "ASSAY_DATABASE_URL": settings.effective_database_url,
            "ASSAY_ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
            "ASSAY_TOKEN_SIGNING_KEY": settings.token_signing_key.get_secret_value(),
            "ASSAY_SESSION_SECRET": settings.session_secret.get_secret_value(),
            "ASSAY_KEY_REFRESH_SECONDS": "0",
        }
    )

    async def run(*args: str) -> Any:
        return await asyncio.to_thread(CliRunner().invoke, cli_app, ["data-keys", *args], env=env)

    return run


async def test_rotate_reencrypt_and_retire_at_the_terminal(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    owner = bearer((await login(client, await make_member()))["access_token"])
    await _seal_credential(client, owner, "abuseipdb", "cli-credential-5e7a11")
    await _seal_credential(client, owner, "urlhaus", "cli-credential-0f3b92")
    run = _runner(app)
    old_id = app.state.identity.keyring.active_key_id

    status = await run("status")
    assert status.exit_code == 0, status.output
    assert f"{old_id}  active" in status.stdout
    assert "providers.credential_encrypted: 2" in status.stdout

    rotated = await run("rotate")
    assert rotated.exit_code == 0, rotated.output
    assert f"{old_id} now only decrypts" in rotated.stdout

    refused = await run("retire", old_id)
    assert refused.exit_code == EXIT_CONFIG_PROBLEM
    assert f"Data key {old_id} still seals 2 values" in refused.output
    assert "providers.credential_encrypted: 2 values" in refused.output

    stopped = await run("reencrypt", "--batches", "1")
    assert stopped.exit_code == 0, stopped.output
    assert "Stopped before the end" in stopped.stdout
    finished = await run("reencrypt")
    assert finished.exit_code == 0, finished.output
    assert "succeeded, 2 of 2 re-sealed" in finished.stdout

    retired = await run("retire", old_id)
    assert retired.exit_code == 0, retired.output
    assert f"Data key {old_id} is retired" in retired.stdout
    after = await run("status")
    assert f"{old_id}  retired" in after.stdout
