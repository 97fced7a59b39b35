"""`assay audit verify` and `assay audit export`, against the app's own database."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import delete
from typer.testing import CliRunner

from assay.audit.models import SecurityEvent
from assay.cli import app as cli_app
from tests.support.identity import MakeMember

from .conftest import chain_rows, write_events


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
        }
    )

    async def run(*args: str) -> Any:
        return await asyncio.to_thread(CliRunner().invoke, cli_app, ["audit", *args], env=env)

    return run


async def test_verify_reports_an_intact_chain_then_names_a_deleted_event(
    app: FastAPI, make_member: MakeMember
) -> None:
    member = await make_member()
    assert member.org_slug is not None
    await write_events(app, member.org_id, 4)
    run = _runner(app)
    intact = await run("verify", "--org", member.org_slug)
    assert intact.exit_code == 0, intact.output
    assert "OK: the chain is intact" in intact.stdout
    rows = await chain_rows(app, member.org_id)
    async with app.state.database.sessionmaker() as db:
        await db.execute(delete(SecurityEvent).where(SecurityEvent.id == rows[1].id))
        await db.commit()
    broken = await run("verify", "--org", member.org_slug)
    assert broken.exit_code == 1, broken.output
    assert f"FAILED: deleted at seq 2 (event {rows[2].id})" in broken.stdout


async def test_the_platform_chain_verifies(app: FastAPI) -> None:
    await write_events(app, None, 3)
    done = await _runner(app)("verify", "--platform")
    assert done.exit_code == 0, done.output
    assert "chain platform:" in done.stdout


async def test_an_export_written_by_the_cli_verifies_from_the_file(
    app: FastAPI, make_member: MakeMember, tmp_path: Path
) -> None:
    member = await make_member()
    assert member.org_slug is not None
    await write_events(app, member.org_id, 3)
    run = _runner(app)
    export = tmp_path / "audit.jsonl"
    written = await run("export", "--org", member.org_slug, "--output", str(export))
    assert written.exit_code == 0, written.output
    key = tmp_path / "audit-key.pem"
    key.write_text(app.state.audit_trail.signer.public_pem, encoding="utf-8")
    checked = await run("verify", "--file", str(export), "--public-key", str(key))
    assert checked.exit_code == 0, checked.output
    assert "OK: the chain is intact" in checked.stdout
    export.write_text(export.read_text(encoding="utf-8").replace('"success"', '"failure"', 1))
    tampered = await run("verify", "--file", str(export), "--public-key", str(key))
    assert tampered.exit_code == 1
    assert "FAILED: edited at seq 1" in tampered.stdout


async def test_usage_mistakes_are_one_line_errors(app: FastAPI, tmp_path: Path) -> None:
    run = _runner(app)
    neither = await run("verify")
    assert neither.exit_code == 2
    assert "--org SLUG or --platform" in neither.stderr
    not_an_export = tmp_path / "notes.txt"
    not_an_export.write_text("hello\n", encoding="utf-8")
    refused = await run("verify", "--file", str(not_an_export), "--public-key", str(not_an_export))
    assert refused.exit_code == 2
    assert "not an Ed25519 public key" in refused.stderr
    unknown = await run("verify", "--org", "no-such-org")
    assert unknown.exit_code == 2
    assert "no-such-org" in unknown.stderr
