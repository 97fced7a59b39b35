"""docs/audit.md's offline procedure, followed step by step, and its tables against the code."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import httpx
from fastapi import FastAPI

from assay.audit_trail.chain import ProblemKind
from tests.support.identity import MakeMember, bearer, login

from .conftest import write_events

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def _documented_script() -> str:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(
        r"<!-- verify-export:begin -->\n```python\n(.*?)```\n<!-- verify-export:end -->",
        text,
        re.DOTALL,
    )
    assert block is not None, "docs/audit.md lost its verification script"
    return block.group(1)


async def _run(script: Path, export: Path, key: Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script), str(export), str(key)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_an_auditor_following_the_documented_steps_verifies_an_export(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember, tmp_path: Path
) -> None:
    member = await make_member()
    await write_events(app, member.org_id, 5)
    token = (await login(client, member))["access_token"]
    # Step 1: the public key, its PEM kept in audit-key.pem.
    key_response = await client.get("/v1/audit/public-key", headers=bearer(token))
    key = tmp_path / "audit-key.pem"
    key.write_text(key_response.json()["public_key_pem"], encoding="utf-8")
    # Step 2: the export, saved as audit.jsonl.
    export = tmp_path / "audit.jsonl"
    export.write_text((await client.get("/v1/audit/export", headers=bearer(token))).text)
    # Step 3: the documented script.
    script = tmp_path / "verify_audit_export.py"
    script.write_text(_documented_script(), encoding="utf-8")
    done = await _run(script, export, key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "OK: the export verifies"

    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    event_lines = [i for i, line in enumerate(lines) if json.loads(line)["type"] == "event"]
    tampered = {
        "edited": [
            line.replace('"outcome":"success"', '"outcome":"failure"')
            if i == event_lines[2]
            else line
            for i, line in enumerate(lines)
        ],
        "deleted": [line for i, line in enumerate(lines) if i != event_lines[1]],
        "cut": [line for i, line in enumerate(lines) if i != event_lines[-1]],
        "swapped": [
            lines[event_lines[2]]
            if i == event_lines[1]
            else lines[event_lines[1]]
            if i == event_lines[2]
            else line
            for i, line in enumerate(lines)
        ],
    }
    for name, changed in tampered.items():
        export.write_text("".join(changed), encoding="utf-8")
        refused = await _run(script, export, key)
        assert refused.returncode == 1, (name, refused.stdout, refused.stderr)
        assert refused.stdout.startswith("FAILED: "), name


def test_the_documented_problem_kinds_are_the_verifiers() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## What verification finds", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    assert documented == set(get_args(ProblemKind))
