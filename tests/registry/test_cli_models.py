"""`assay demo`, `assay models import|keygen|sign|verify` and `assay keys`, end to end, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner, Result

from assay.app import create_app
from assay.cli import app
from assay.core.db import Database
from assay.core.tenancy import across_tenants
from assay.demo import REDTEAM_PACK, find_default_pack
from assay.engine.pack import Pack, load_pack
from assay.registry.models import ModelVersion, RegisteredModel
from assay.settings import load_settings
from tests.support.engine import PACK_DIR, example_modules, trained_pack

from ..conftest import KNOWN_SECRETS, new_secret

__all__ = ["example_modules", "trained_pack"]
runner = CliRunner()
CURL = re.compile(
    r"curl -s (?P<url>\S+) \\\n\s+-H '(?P<key>[^']+)' -H '(?P<type>[^']+)' \\\n\s+-d '(?P<body>.*)'"
)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "ASSAY_DATA_DIR": str(tmp_path / "data"),
        "ASSAY_DATABASE_URL": database_url,
        "ASSAY_TOKEN_SIGNING_KEY": new_secret(),
        "ASSAY_SESSION_SECRET": new_secret(),
        "ASSAY_ENCRYPTION_KEY": new_secret(),
        "ASSAY_ARGON2_MEMORY_KIB": "1024",
        "ASSAY_ARGON2_TIME_COST": "1",
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def _failed(result: Result) -> str:
    """A clean failure: exit 1 with an `Error:` line, never a traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "Error:" in result.stderr
    return result.stderr


def _versions() -> dict[str, list[tuple[int, str]]]:
    """Every model's versions and their status, read from the CLI's database."""

    async def read() -> dict[str, list[tuple[int, str]]]:
        database = Database(load_settings())
        try:
            async with database.sessionmaker() as db:
                rows = await db.execute(
                    across_tenants(
                        select(RegisteredModel.name, ModelVersion.version, ModelVersion.status)
                        .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
                        .order_by(RegisteredModel.name, ModelVersion.version),
                        "test reads versions",
                    )
                )
                found: dict[str, list[tuple[int, str]]] = {}
                for name, number, status in rows.all():
                    found.setdefault(name, []).append((number, status))
                return found
        finally:
            await database.dispose()

    return asyncio.run(read())


def _create_org() -> None:
    created = runner.invoke(
        app,
        ["admin", "create", "--email", "ops@example.org", "--org", "Acme", "--generate-password"],
    )
    _ok(created)
    KNOWN_SECRETS.add(created.stdout.rsplit(": ", 1)[-1].strip())


async def _send(method: str, url: str, headers: dict[str, str], body: str) -> httpx.Response:
    """Send a request to an app built from the same environment as the CLI."""
    server = create_app(load_settings())
    async with server.router.lifespan_context(server):
        transport = httpx.ASGITransport(app=server, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.request(
                method, httpx.URL(url).path, headers=headers, content=body.encode()
            )


def test_demo_prints_credentials_and_a_curl_command_that_scores(
    cli_env: Path, trained_pack: Pack
) -> None:
    result = runner.invoke(app, ["demo", "--pack", str(trained_pack.directory)])
    output = _ok(result)
    key = re.search(r"API key \(shown once\): (\S+)", output).group(1)  # type: ignore[union-attr]
    password = re.search(r"one-time password .*: (\S+)", output).group(1)  # type: ignore[union-attr]
    KNOWN_SECRETS.update([key, password])
    assert key.startswith("assay_sk_")
    console = re.search(r"web console: (\S+)", output)
    assert console is not None, output
    assert httpx.URL(console.group(1)).path == "/console/"
    curl = CURL.search(output)
    assert curl is not None, output
    assert curl["url"].endswith("/v1/models/startup-success/predict")
    header_name, _, header_value = curl["key"].partition(": ")
    content_type = curl["type"].partition(": ")[2]
    response = asyncio.run(
        _send(
            "POST",
            curl["url"],
            {header_name: header_value, "content-type": content_type},
            curl["body"],
        )
    )
    assert response.status_code == 200, response.text
    [scored] = response.json()["results"]
    assert scored["derived"]["runway_months"] == pytest.approx(20.0)
    assert scored["label"] in {"PASS", "CONDITIONAL PASS", "FAIL"}

    again = runner.invoke(app, ["demo", "--pack", str(trained_pack.directory)])
    assert "already created earlier" in _ok(again)
    KNOWN_SECRETS.add(re.search(r"API key \(shown once\): (\S+)", again.stdout).group(1))  # type: ignore[union-attr]
    # Idempotent: the second run registered no new versions.
    assert all(versions == [(1, "healthy")] for versions in _versions().values())
    # The startup pack's models, the threat-intelligence pack's verdict model and the
    # red-team pack's detectors.
    detectors = {m.name for m in load_pack(REDTEAM_PACK).models}
    assert {"redteam-canary", "redteam-refusal"} <= detectors
    expected = {m.name for m in trained_pack.models} | {"threat-verdict"} | detectors
    assert set(_versions()) == expected


def test_the_demo_finds_its_pack_from_any_directory(cli_env: Path) -> None:
    assert Path.cwd() == cli_env
    assert find_default_pack() == PACK_DIR


def test_sign_trust_import_revoke_and_recover(cli_env: Path, trained_pack: Pack) -> None:
    _create_org()
    pack = cli_env / "pack"
    shutil.copytree(trained_pack.directory, pack)
    key_file = cli_env / "publisher.pem"
    public = _ok(runner.invoke(app, ["models", "keygen", "--out", str(key_file)]))
    public = public.rsplit("Public key: ", 1)[1].strip()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    artifact = pack / "build" / "startup_success_lgbm.txt"
    _ok(runner.invoke(app, ["models", "sign", str(artifact), "--key", str(key_file)]))
    manifest = yaml.safe_load((pack / "manifest.yaml").read_text())
    manifest["models"][0]["signature"] = "build/startup_success_lgbm.txt.sig"
    (pack / "manifest.yaml").write_text(yaml.safe_dump(manifest))

    # Signed by a key nobody trusts yet: refused, and nothing is registered.
    refused = _failed(runner.invoke(app, ["models", "import", str(pack), "--org", "acme"]))
    assert "trusted key" in refused
    assert _versions() == {}

    trusted = _ok(
        runner.invoke(
            app, ["keys", "trust", "--org", "acme", "--name", "ml team", "--public-key", public]
        )
    )
    fingerprint = trusted.split()[1].rstrip(".")
    duplicate = _failed(
        runner.invoke(
            app, ["keys", "trust", "--org", "acme", "--name", "again", "--public-key", public]
        )
    )
    assert "already trusted" in duplicate
    assert "database" not in duplicate
    imported = _ok(runner.invoke(app, ["models", "import", str(pack), "--org", "acme"]))
    assert "startup-success v1 (ensemble) aliases: production" in imported
    assert "unchanged" not in imported
    assert "ok   startup-success-lgbm v1" in _ok(runner.invoke(app, ["models", "verify"]))

    revoked = _ok(
        runner.invoke(app, ["keys", "revoke", "--org", "acme", "--fingerprint", fingerprint])
    )
    assert "unhealthy now: startup-success-lgbm" in revoked
    assert "unhealthy now: startup-success" in revoked
    assert "revoked" in _ok(runner.invoke(app, ["keys", "list", "--org", "acme"]))
    status = _versions()
    assert status["startup-success-lgbm"] == [(1, "unhealthy")]
    assert status["startup-success"] == [(1, "unhealthy")]
    assert status["capital-pillar"] == [(1, "healthy")]
    failed = runner.invoke(app, ["models", "verify"])
    assert failed.exit_code == 1
    assert "FAIL startup-success-lgbm v1" in failed.stdout

    # Trusted again and verified: healthy again, the ensemble with it.
    _ok(
        runner.invoke(
            app, ["keys", "trust", "--org", "acme", "--name", "ml team", "--public-key", public]
        )
    )
    recovered = _ok(runner.invoke(app, ["models", "verify"]))
    assert "startup-success-lgbm v1" in recovered
    assert "(healthy again)" in recovered
    assert all(versions == [(1, "healthy")] for versions in _versions().values())
    # Importing the same pack again changes nothing.
    again = _ok(runner.invoke(app, ["models", "import", str(pack), "--org", "acme"]))
    assert again.count("(unchanged)") == len(trained_pack.models)

    # Tamper with a stored artifact: verify names it, marks it, exits non-zero.
    store = cli_env / "data" / "artifacts" / "sha256"
    victim = next(p for p in store.rglob("*") if p.is_file() and p.stat().st_size > 10_000)
    victim.write_bytes(victim.read_bytes() + b"\n# tampered")
    verified = runner.invoke(app, ["models", "verify"])
    assert verified.exit_code == 1
    assert "FAIL startup-success-lgbm v1: artifact integrity check failed" in verified.stdout
    assert _versions()["startup-success-lgbm"] == [(1, "unhealthy")]


def test_an_untrained_pack_is_refused_before_anything_is_written(
    cli_env: Path, trained_pack: Pack
) -> None:
    _create_org()
    pack = cli_env / "untrained"
    shutil.copytree(trained_pack.directory, pack, ignore=shutil.ignore_patterns("build"))
    result = _failed(runner.invoke(app, ["models", "import", str(pack), "--org", "acme"]))
    assert "train.py" in result
    assert "build/startup_success_lgbm.txt does not exist" in result
    assert "database" not in result
    assert _versions() == {}
    missing = _failed(
        runner.invoke(app, ["models", "import", str(cli_env / "nowhere"), "--org", "acme"])
    )
    assert "manifest.yaml does not exist" in missing


def test_file_problems_are_one_line_not_a_traceback(cli_env: Path) -> None:
    key_file = cli_env / "publisher.pem"
    _ok(runner.invoke(app, ["models", "keygen", "--out", str(key_file)]))
    exists = _failed(runner.invoke(app, ["models", "keygen", "--out", str(key_file)]))
    assert "never overwritten" in exists
    missing = _failed(
        runner.invoke(app, ["models", "sign", str(cli_env / "absent.onnx"), "--key", str(key_file)])
    )
    assert "absent.onnx" in missing
    not_a_key = cli_env / "not-a-key.pem"
    not_a_key.write_text("hello")
    bad_key = _failed(
        runner.invoke(app, ["models", "sign", str(key_file), "--key", str(not_a_key)])
    )
    assert "not an unencrypted PEM private key" in bad_key
    no_org = _failed(runner.invoke(app, ["keys", "list", "--org", "nobody"]))
    assert "No organisation 'nobody'" in no_org
