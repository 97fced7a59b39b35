"""`assay mock-providers`: loopback only unless asked, the base URLs printed; and the test
fixture's real server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.mock_providers import cli as mock_cli
from tests.support.mock_providers import RunningMockProviders

runner = CliRunner()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What uvicorn would have been asked to serve (nothing is started)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(mock_cli.uvicorn, "run", lambda app, **options: calls.append(options))
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "mock.example.org"])
def test_a_non_loopback_host_is_refused_without_allow_remote(
    served: list[dict[str, Any]], host: str
) -> None:
    result = runner.invoke(app, ["mock-providers", "--host", host])
    assert result.exit_code == 2
    assert "fake" in result.stderr
    assert "--allow-remote" in result.stderr
    assert served == []


def test_allow_remote_lets_it_listen_anywhere(served: list[dict[str, Any]]) -> None:
    result = runner.invoke(app, ["mock-providers", "--host", "0.0.0.0", "--allow-remote"])
    assert result.exit_code == 0, result.output
    assert served[0]["host"] == "0.0.0.0"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_a_loopback_host_serves_and_prints_the_base_urls(
    served: list[dict[str, Any]], host: str
) -> None:
    result = runner.invoke(
        app, ["mock-providers", "--host", host, "--port", "8901", "--latency-ms", "5"]
    )
    assert result.exit_code == 0, result.output
    shown = f"[{host}]" if ":" in host else host
    for base in ("/virustotal/api/v3", "/abuseipdb/api/v2", "/urlhaus/v1"):
        assert f"http://{shown}:8901{base}" in result.stdout
    assert "FAKE" in result.stdout
    assert (served[0]["host"], served[0]["port"]) == (host, 8901)


def test_an_invalid_data_set_file_is_refused(served: list[dict[str, Any]], tmp_path: Path) -> None:
    broken = tmp_path / "dataset.yaml"
    broken.write_text("indicators: 3\n", encoding="utf-8")
    result = runner.invoke(app, ["mock-providers", "--dataset", str(broken)])
    assert result.exit_code == 2
    assert "The data set is invalid" in result.stderr
    assert served == []


def test_the_help_says_the_data_is_fake() -> None:
    result = runner.invoke(app, ["mock-providers", "--help"])
    assert result.exit_code == 0
    assert "FAKE" in result.stdout
    assert "--allow-remote" in result.stdout


async def test_the_fixture_serves_all_three_providers_on_loopback(
    mock_providers: RunningMockProviders,
) -> None:
    assert mock_providers.virustotal_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(timeout=5) as http:
        virustotal = await http.get(
            f"{mock_providers.virustotal_url}/ip_addresses/185.220.101.34",
            headers={"x-apikey": "k"},
        )
        abuseipdb = await http.get(
            f"{mock_providers.abuseipdb_url}/check",
            params={"ipAddress": "8.8.4.4"},  # slow: answers after the fixture's 0.2 s
            headers={"Key": "k"},
        )
        urlhaus = await http.post(
            f"{mock_providers.urlhaus_url}/url/", data={"url": "https://evil-example.com/path"}
        )
    assert virustotal.json()["data"]["attributes"]["last_analysis_stats"]["malicious"] == 7
    assert abuseipdb.json()["data"]["abuseConfidenceScore"] == 0
    assert urlhaus.status_code == 401
    assert [(r["provider"], r["credential_present"]) for r in mock_providers.requests()] == [
        ("virustotal", True),
        ("abuseipdb", True),
        ("urlhaus", False),
    ]
    mock_providers.reset()
    assert mock_providers.requests() == []
