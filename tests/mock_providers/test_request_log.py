"""The mock-only request log: what was asked, of whom, with or without a credential."""

from __future__ import annotations

import httpx
import pytest

from assay.mock_providers import state as state_module
from assay.mock_providers.app import create_app
from assay.mock_providers.state import MockState
from assay.mock_providers.virustotal import url_identifier

SECRET = "s3cret-provider-key-never-logged"


async def test_every_request_is_recorded_without_the_credential(
    mock_client: httpx.AsyncClient,
) -> None:
    evil = "https://evil-example.com/path"
    await mock_client.get(
        f"/virustotal/api/v3/urls/{url_identifier(evil)}", headers={"x-apikey": SECRET}
    )
    await mock_client.get("/abuseipdb/api/v2/check", params={"ipAddress": "185.220.101.34"})
    await mock_client.post(
        "/urlhaus/v1/host/", data={"host": "evil-example.com"}, headers={"Auth-Key": SECRET}
    )
    answer = await mock_client.get("/_mock/requests")
    assert answer.status_code == 200
    assert answer.json()["mock_only"] is True
    assert answer.json()["requests"] == [
        {
            "provider": "virustotal",
            "method": "GET",
            "path": f"/virustotal/api/v3/urls/{url_identifier(evil)}",
            "indicator": evil,
            "credential_present": True,
        },
        {
            "provider": "abuseipdb",
            "method": "GET",
            "path": "/abuseipdb/api/v2/check",
            "indicator": "185.220.101.34",
            "credential_present": False,
        },
        {
            "provider": "urlhaus",
            "method": "POST",
            "path": "/urlhaus/v1/host/",
            "indicator": "evil-example.com",
            "credential_present": True,
        },
    ]
    assert SECRET not in answer.text


async def test_a_rejected_key_is_recorded_as_present(mock_client: httpx.AsyncClient) -> None:
    await mock_client.get(
        "/virustotal/api/v3/domains/example.com", headers={"x-apikey": "rejected-by-mock"}
    )
    (entry,) = (await mock_client.get("/_mock/requests")).json()["requests"]
    assert entry["credential_present"] is True


async def test_reset_clears_the_log(mock_client: httpx.AsyncClient) -> None:
    await mock_client.get("/virustotal/api/v3/domains/example.com", headers={"x-apikey": "k"})
    assert (await mock_client.post("/_mock/reset")).status_code == 200
    assert (await mock_client.get("/_mock/requests")).json()["requests"] == []


async def test_every_answer_says_it_is_fake(mock_client: httpx.AsyncClient) -> None:
    for answer in (
        await mock_client.get("/virustotal/api/v3/domains/example.com"),
        await mock_client.get("/_mock/requests"),
    ):
        assert answer.headers["X-Assay-Mock"] == "fake data for offline use"


async def test_the_global_latency_is_added_to_every_provider_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(state_module, "sleep", recorded_sleep)
    app = create_app(latency_ms=50, slow_seconds=3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
        await client.get("/virustotal/api/v3/domains/example.com", headers={"x-apikey": "k"})
        await client.get("/virustotal/api/v3/domains/slow.example.net", headers={"x-apikey": "k"})
        await client.post("/urlhaus/v1/url/", data={"url": "https://example.com/"})
    assert waits == [0.05, 0.05, 3, 0.05]


def test_the_options_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        create_app(latency_ms=-1)


def test_the_log_keeps_only_the_newest_requests(mock_state: MockState) -> None:
    log = state_module.RequestLog(limit=2)
    for number in range(3):
        log.record(state_module.RecordedRequest("virustotal", "GET", f"/{number}", None, False))
    assert [entry["path"] for entry in log.entries()] == ["/1", "/2"]
    assert mock_state.log.entries() == []
