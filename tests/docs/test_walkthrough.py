"""docs/walkthrough.md, run command by command against a real application.

Every `sh` block of the page is executed in order: `curl` commands become HTTP requests
to the app (in process), `assay` commands run the real CLI against the same database
and data directory, shell variables and `$(... | json '[...]')` captures work as in a
shell. Values in `<angle brackets>` are filled in as a reader would: from the CLI's
output, the authenticator secret, the outbox, or the previous answers. A command whose
answer is an error fails the test, unless the page's comment under it shows that
error. Edit the page and this test follows; break the flow and this test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI
from typer.testing import CliRunner

from assay.accounts.models import User
from assay.cli import app as cli_app
from assay.core.mail import list_outbox, outbox_directory
from tests.support.identity import strong_password

from ..conftest import KNOWN_SECRETS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "walkthrough.md"
_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_PLACEHOLDER = re.compile(r"<([^<>]+)>")
# The page's variables that hold a credential: access tokens, the MFA challenge, the key.
SECRET_VARIABLES = frozenset({"T", "C", "A", "K"})
_JSON_PATH = re.compile(r"""^\s*\[\s*["'](\w+)["']\s*\]\s*$""")


@dataclass
class Step:
    command: str
    comment: list[str] = field(default_factory=list)


def steps(text: str) -> list[Step]:
    """Commands of the page's sh blocks, continuation lines joined, with their comments."""
    found: list[Step] = []
    for block in _BLOCK.findall(text):
        pending = ""
        for line in block.splitlines():
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                if stripped.startswith("#") and found:
                    found[-1].comment.append(stripped.lstrip("# "))
                continue
            pending += (" " if pending else "") + stripped
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip()
                continue
            try:
                shlex.split(pending)
            except ValueError:
                continue  # an open quote: the command goes on on the next line
            found.append(Step(pending))
            pending = ""
        assert not pending, f"unfinished command: {pending}"
    return found


class Reader:
    """What a person following the page would type, see and copy."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.variables: dict[str, str] = {}
        self.files: dict[str, str] = {}
        self.answers: list[Any] = []
        self.cli_output = ""
        self.passphrases: dict[str, str] = {}
        self.codes_used = 0

    # --- values in angle brackets ---------------------------------------------------------

    def fill(self, name: str) -> str:
        if name == "one-time password":
            found = re.search(r"One-time password .*: (\S+)", self.cli_output)
            assert found, self.cli_output
            return KNOWN_SECRETS.add(found.group(1)) or found.group(1)
        if name in ("your passphrase", "her passphrase"):
            return self.passphrases.setdefault(name, strong_password())
        if name in ("code from your app", "next code from your app"):
            secret = next(a["secret"] for a in reversed(self.answers) if "secret" in a)
            KNOWN_SECRETS.add(secret)
            # The app shows a new code every 30 seconds; each is accepted once.
            return pyotp.TOTP(secret).at(time.time() + 30 * (name != "code from your app"))
        if name == "token from the link":
            return self._outbox_token()
        if name == "user id of Ada":
            members = next(a for a in reversed(self.answers) if isinstance(a, list) and a)
            return str(next(m["user_id"] for m in members if m["email"] == "ada@example.org"))
        raise AssertionError(f"teach the walkthrough test what to put in <{name}>")

    def _outbox_token(self) -> str:
        entries = list_outbox(outbox_directory(self.app.state.settings))
        newest = next(e for e in entries if e.to == "ada@example.org")
        with newest.path.open("rb") as raw:
            message = BytesParser(policy=default_policy).parse(raw)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        found = re.search(r"#token=([A-Za-z0-9_-]+)", str(body.get_content()))
        assert found, newest.path
        return KNOWN_SECRETS.add(found.group(1)) or found.group(1)

    def expand(self, word: str) -> str:
        word = _VARIABLE.sub(lambda m: self.variables[m.group(1)], word)
        return _PLACEHOLDER.sub(lambda m: self.fill(m.group(1)), word)

    # --- running commands -----------------------------------------------------------------

    async def run(self, step: Step) -> str:
        command = step.command
        if command.startswith("json()"):
            return ""  # the page's helper, implemented by `_json` below
        assignment = re.match(r"^([A-Za-z_]\w*)=(.*)$", command, re.DOTALL)
        if assignment:
            name, value = assignment.groups()
            if value.startswith("$(") and value.endswith(")"):
                self.variables[name] = (await self._pipeline(value[2:-1], step)).strip()
                # Captured from an answer: tokens, challenges, keys. The page's literals
                # (the base URL, a header) are not secrets and appear in every log line.
                if name in SECRET_VARIABLES:
                    KNOWN_SECRETS.add(self.variables[name])
            else:
                self.variables[name] = shlex.split(value)[0]
            return ""
        return await self._pipeline(command, step)

    async def _pipeline(self, command: str, step: Step) -> str:
        stage, _, query = command.partition(" | json ")
        words = shlex.split(stage)
        if words[0] == "json":
            assert words[2] == "<", command
            return self._json(self.files[words[3]], words[1])
        if words[0] == "assay":
            output = await self._cli(words[1:])
        else:
            output = await self._curl(words, step)
        return self._json(output, shlex.split(query)[0]) if query else output

    @staticmethod
    def _json(text: str, path: str) -> str:
        matched = _JSON_PATH.match(path)
        assert matched, path
        value = json.loads(text)[matched.group(1)]
        return str(value)

    async def _cli(self, args: list[str]) -> str:
        await self.app.state.identity.mail.wait_idle()
        settings = self.app.state.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        env.update(
            {
                "ASSAY_ENV": "test",
                "ASSAY_DATA_DIR": str(settings.data_dir),
                "ASSAY_DATABASE_URL": settings.effective_database_url,
                "ASSAY_ARGON2_MEMORY_KIB": str(settings.argon2_memory_kib),
                "ASSAY_ARGON2_TIME_COST": str(settings.argon2_time_cost),
            }
        )
        for name in ("token_signing_key", "session_secret", "encryption_key"):
            env[f"ASSAY_{name.upper()}"] = getattr(settings, name).get_secret_value()
        words = [self.expand(w) for w in args]
        result = await asyncio.to_thread(CliRunner().invoke, cli_app, words, env=env)
        assert result.exit_code == 0, (words, result.output)
        self.cli_output = str(result.stdout)
        return self.cli_output

    async def _curl(self, words: list[str], step: Step) -> str:
        assert words[0] == "curl", words
        method, headers, data, url, target = None, {}, None, None, None
        items = iter(words[1:])
        for word in items:
            if word == "-s":
                continue
            if word == "-X":
                method = next(items)
            elif word == "-H":
                name, _, value = self.expand(next(items)).partition(":")
                headers[name.strip()] = value.strip()
            elif word == "-d":
                data = self.expand(next(items))
            elif word == ">":
                target = next(items)
            else:
                url = self.expand(word)
        assert url is not None, words
        response = await self.client.request(
            method or ("POST" if data is not None else "GET"),
            url,
            headers=headers,
            content=data.encode() if data is not None else None,
        )
        expected = re.search(r'"status":(\d{3})', " ".join(step.comment))
        if expected:
            assert response.status_code == int(expected.group(1)), (words, response.text)
        else:
            assert response.status_code < 300, (words, response.status_code, response.text)
        if response.content:
            answer = response.json()
            self.answers.append(answer)
            if step.comment and step.comment[0] in ("[]", "{}"):
                assert answer == json.loads(step.comment[0]), (words, answer)
        if target is not None:
            self.files[target] = response.text
        return response.text


def test_the_page_parses_into_the_whole_flow() -> None:
    commands = [s.command for s in steps(PAGE.read_text(encoding="utf-8"))]
    joined = "\n".join(commands)
    for expected in (
        "assay admin create",
        "/v1/auth/login",
        "/v1/me/password",
        "/v1/me/mfa/totp/confirm",
        "/v1/auth/mfa",
        "/v1/org/invitations",
        "assay dev outbox",
        "/v1/auth/invitations/accept",
        "/v1/org/api-keys",
    ):
        assert expected in joined, expected
    # The multi-line body of the key request is one command.
    assert any('"allowed_cidrs"' in c and "> key.json" in c for c in commands)


async def test_the_walkthrough_runs_as_written(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        reader = Reader(app, http)
        ran = 0
        for step in steps(PAGE.read_text(encoding="utf-8")):
            await reader.run(step)
            ran += 1
        assert ran >= 20
        # Where the page leaves things.
        async with app.state.database.sessionmaker() as db:
            from sqlalchemy import select

            ops = (
                await db.execute(select(User).where(User.email == "ops@example.org"))
            ).scalar_one()
            assert ops.is_platform_admin
            assert ops.mfa_enabled
            assert not ops.must_change_password
        me = await http.get("/v1/me", headers={"authorization": f"Bearer {reader.variables['A']}"})
        assert me.json()["scope"] == "full"
        members = {
            m["email"]: m["role"]
            for m in (
                await http.get(
                    "/v1/org/members",
                    headers={"authorization": f"Bearer {reader.variables['A']}"},
                )
            ).json()
        }
        assert members == {"ops@example.org": "owner", "ada@example.org": "maintainer"}
        ada = await http.post(
            "/v1/auth/login",
            json={"email": "ada@example.org", "password": reader.passphrases["her passphrase"]},
        )
        assert ada.status_code == 200
        # The key was used, then revoked.
        revoked = await http.get("/v1/models", headers={"x-api-key": reader.variables["K"]})
        assert revoked.status_code == 401
