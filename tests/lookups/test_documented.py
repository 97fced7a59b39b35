"""docs/threat-intel.md as written: the declared provider compiles, the re-weighted
verdict model registers and decides the next lookup, and `assay providers` registers
providers and their keys from a terminal."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from assay.cli import app as cli
from assay.providers.compiled import parse_provider_document
from assay.settings import Settings
from tests.conftest import new_secret
from tests.lookups.conftest import Analyst, by_provider, look_up, provider_settings
from tests.support.mock_providers import RunningMockProviders

DOC = Path(__file__).resolve().parents[2] / "docs" / "threat-intel.md"


def _block(kind: str, name: str) -> str:
    found = re.search(rf"<!-- {kind}: {name} -->\n```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert found is not None, f"{kind} {name} is not in {DOC.name}"
    return found.group(1)


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, mock: RunningMockProviders
) -> Settings:
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}", **provider_settings(mock)
    )


def test_the_declared_provider_compiles() -> None:
    provider = parse_provider_document(_block("provider", "my-feed"))
    assert provider.name == "my-feed"
    assert [str(t) for t in provider.definition.supports] == ["ipv4", "ipv6"]


async def test_the_reweighted_verdict_model_decides_the_next_lookup(
    client: httpx.AsyncClient, analyst: Analyst
) -> None:
    manifest = _block("manifest", "threat-verdict-reweighted")
    assert yaml.safe_load(manifest)["spec"]["kind"] == "rules"
    created = await client.post(
        "/v1/models/threat-verdict/versions",
        data={"manifest": manifest},
        headers=analyst.headers,
    )
    assert created.status_code == 201, created.text
    moved = await client.put(
        "/v1/models/threat-verdict/aliases/production",
        json={"version": created.json()["version"]},
        headers=analyst.headers,
    )
    assert moved.status_code == 200, moved.text

    lookup = await look_up(client, analyst, "185.220.101.34")
    assert lookup["model"] == "threat-verdict@2"
    weights = {name: r["weight"] for name, r in by_provider(lookup).items()}
    assert weights == {"virustotal": 0.4, "abuseipdb": 0.4, "urlhaus": 0.2}


def test_providers_are_registered_from_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "ASSAY_DATA_DIR": str(tmp_path / "cli-data"),
        "ASSAY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ASSAY_TOKEN_SIGNING_KEY": new_secret(),
        "ASSAY_SESSION_SECRET": new_secret(),
        "ASSAY_ENCRYPTION_KEY": new_secret(),
        "VT_KEY": "vt-key-from-the-environment",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    created = runner.invoke(
        cli,
        ["admin", "create", "--email", "ops@example.org", "--org", "Acme", "--generate-password"],
    )
    assert created.exit_code == 0, created.output
    feed = tmp_path / "my-feed.yaml"
    feed.write_text(_block("provider", "my-feed"))
    imported = runner.invoke(
        cli,
        ["providers", "import", "--org", "acme", "--builtin", "virustotal", str(feed)],
    )
    assert imported.exit_code == 0, imported.output
    assert "virustotal: registered" in imported.stdout
    assert "my-feed: registered" in imported.stdout
    keyed = runner.invoke(
        cli, ["providers", "credential", "--org", "acme", "virustotal", "--from-env", "VT_KEY"]
    )
    assert keyed.exit_code == 0, keyed.output
    assert "vt-key-from-the-environment" not in keyed.output
    refused = runner.invoke(cli, ["providers", "import", "--org", "acme", "--builtin", "nope"])
    assert refused.exit_code != 0
    assert "no built-in provider 'nope'" in refused.output
