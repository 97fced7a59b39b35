"""POST /v1/lookups against the mock providers: verdicts, evidence, canonical indicators,
partial answers, the result cache, history and tenant isolation."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from tests.lookups.conftest import Analyst, by_provider, look_up
from tests.support.identity import MakeMember, bearer, login
from tests.support.mock_providers import RunningMockProviders

KNOWN_BAD_IP = "185.220.101.34"


async def test_a_known_bad_address_is_malicious_with_every_providers_evidence(
    client: httpx.AsyncClient, analyst: Analyst, mock: RunningMockProviders
) -> None:
    lookup = await look_up(client, analyst, KNOWN_BAD_IP)

    assert lookup["indicator"] == KNOWN_BAD_IP
    assert lookup["indicator_type"] == "ipv4"
    assert lookup["verdict"] == "malicious"
    assert lookup["model"].startswith("threat-verdict@")
    results = by_provider(lookup)
    assert {name: r["status"] for name, r in results.items()} == {
        "abuseipdb": "ok",
        "urlhaus": "ok",
        "virustotal": "ok",
    }
    assert results["virustotal"]["evidence"].startswith("7 engines malicious, 1 suspicious")
    assert results["virustotal"]["level"] == "malicious"
    assert results["abuseipdb"]["evidence"] == "abuse confidence 100 %, 1,204 reports"
    assert results["abuseipdb"]["link"] == f"https://www.abuseipdb.com/check/{KNOWN_BAD_IP}"
    # Every provider answered: the declared weights hold, and the contributions add up.
    assert lookup["redistributed"] is False
    assert [results[n]["weight"] for n in ("virustotal", "abuseipdb", "urlhaus")] == [
        0.5,
        0.3,
        0.2,
    ]
    total = sum(r["contribution"] for r in results.values())
    assert total == pytest.approx(lookup["score"], abs=0.05)
    # The credentials went where each provider wants them, and only there.
    sent = mock.requests()
    assert {entry["provider"] for entry in sent} == {"virustotal", "abuseipdb", "urlhaus"}
    assert all(entry["credential_present"] for entry in sent)


async def test_a_defanged_url_is_canonicalised_and_scored_as_a_url(
    client: httpx.AsyncClient, analyst: Analyst
) -> None:
    lookup = await look_up(client, analyst, "hxxps://evil-example[.]com/path")

    assert (lookup["indicator_type"], lookup["indicator"]) == (
        "url",
        "https://evil-example.com/path",
    )
    results = by_provider(lookup)
    # AbuseIPDB knows addresses only; its weight goes to the two that answered.
    assert results["abuseipdb"]["status"] == "unsupported"
    assert lookup["redistributed"] is True
    assert results["virustotal"]["effective_weight"] == pytest.approx(0.5 / 0.7, abs=1e-3)
    # 5 of 90 engines is a strong signal, not 5.6 % "clean" (FlashThreat's ratio).
    assert results["virustotal"]["score"] >= 70
    assert lookup["verdict"] == "malicious"


async def test_a_known_good_address_is_clean(client: httpx.AsyncClient, analyst: Analyst) -> None:
    lookup = await look_up(client, analyst, "1.1.1.1")
    assert lookup["verdict"] == "clean"
    assert by_provider(lookup)["abuseipdb"]["score"] == 0


async def test_a_repeated_lookup_is_served_from_cache_and_force_refresh_asks_again(
    client: httpx.AsyncClient, analyst: Analyst, mock: RunningMockProviders
) -> None:
    first = await look_up(client, analyst, KNOWN_BAD_IP)
    asked = len(mock.requests())

    again = await look_up(client, analyst, KNOWN_BAD_IP)
    assert len(mock.requests()) == asked
    assert all(r["cached"] for r in again["results"])
    assert all(r["age_seconds"] is not None for r in again["results"])
    assert again["verdict"] == first["verdict"]

    refreshed = await look_up(client, analyst, KNOWN_BAD_IP, force_refresh=True)
    assert len(mock.requests()) == 2 * asked
    assert not any(r["cached"] for r in refreshed["results"])


@pytest.mark.parametrize(
    ("indicator", "code"),
    [
        ("10.0.0.1", "private_address"),
        ("127.0.0.1", "loopback_address"),
        ("169.254.169.254", "link_local_address"),
        ("<script>", "unrecognised"),
    ],
    ids=["private", "loopback", "metadata", "garbage"],
)
async def test_what_must_not_be_looked_up_is_refused_with_the_reason(
    client: httpx.AsyncClient,
    analyst: Analyst,
    mock: RunningMockProviders,
    indicator: str,
    code: str,
) -> None:
    answer = await client.post(
        "/v1/lookups", json={"indicator": indicator}, headers=analyst.headers
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == "urn:assay:problem:indicator-rejected"
    assert problem["errors"][0]["field"] == "indicator"
    assert problem["errors"][0]["code"] == code
    assert mock.requests() == []


async def test_history_is_filtered_paginated_and_scoped_to_the_organisation(
    app: FastAPI, client: httpx.AsyncClient, analyst: Analyst, make_member: MakeMember
) -> None:
    first = await look_up(client, analyst, KNOWN_BAD_IP)
    await look_up(client, analyst, "1.1.1.1")
    await look_up(client, analyst, "185.220.101[.]34")

    page = await client.get(
        "/v1/lookups", params={"indicator": KNOWN_BAD_IP, "limit": 1}, headers=analyst.headers
    )
    assert page.status_code == 200, page.text
    body = page.json()
    assert len(body["items"]) == 1
    assert body["next_cursor"]
    rest = await client.get(
        "/v1/lookups",
        params={"indicator": KNOWN_BAD_IP, "cursor": body["next_cursor"]},
        headers=analyst.headers,
    )
    ids = [body["items"][0]["id"]] + [item["id"] for item in rest.json()["items"]]
    assert len(ids) == 2
    assert first["id"] in ids
    clean = await client.get("/v1/lookups", params={"verdict": "clean"}, headers=analyst.headers)
    assert [item["indicator"] for item in clean.json()["items"]] == ["1.1.1.1"]

    # Another organisation sees neither the list nor the lookup.
    stranger = await make_member()
    token = (await login(client, stranger))["access_token"]
    assert (await client.get("/v1/lookups", headers=bearer(token))).json()["items"] == []
    hidden = await client.get(f"/v1/lookups/{first['id']}", headers=bearer(token))
    assert hidden.status_code == 404
    mine = await client.get(f"/v1/lookups/{first['id']}", headers=analyst.headers)
    assert mine.status_code == 200
    assert mine.json()["verdict"] == "malicious"
    assert (
        await client.get(f"/v1/lookups/{uuid.uuid4()}", headers=analyst.headers)
    ).status_code == 404


async def test_a_viewer_reads_nothing_and_runs_nothing(
    client: httpx.AsyncClient, analyst: Analyst, make_member: MakeMember
) -> None:
    viewer = await make_member(role="viewer", org_slug=analyst.member.org_slug)
    token = (await login(client, viewer))["access_token"]
    run = await client.post("/v1/lookups", json={"indicator": "1.1.1.1"}, headers=bearer(token))
    assert run.status_code == 403
    assert (await client.get("/v1/lookups", headers=bearer(token))).status_code == 403
    assert (await client.get("/v1/providers", headers=bearer(token))).status_code == 403


async def test_without_the_verdict_model_a_lookup_says_what_to_import(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    member = await make_member()
    token = (await login(client, member))["access_token"]
    answer = await client.post("/v1/lookups", json={"indicator": "1.1.1.1"}, headers=bearer(token))
    assert answer.status_code == 409
    assert "threat-intelligence pack" in answer.json()["detail"]
