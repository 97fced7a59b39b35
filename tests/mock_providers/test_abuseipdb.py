"""The mock AbuseIPDB v2 `check` answers every address, as AbuseIPDB does."""

from __future__ import annotations

import time

import httpx
import pytest

CHECK = "/abuseipdb/api/v2/check"
KEY = {"Key": "test-key"}
FIELDS = {
    "ipAddress",
    "isPublic",
    "ipVersion",
    "isWhitelisted",
    "abuseConfidenceScore",
    "countryCode",
    "usageType",
    "isp",
    "domain",
    "hostnames",
    "isTor",
    "totalReports",
    "numDistinctUsers",
    "lastReportedAt",
}


async def _check(client: httpx.AsyncClient, address: str, **headers: str) -> httpx.Response:
    params = {"ipAddress": address, "maxAgeInDays": "90"}
    return await client.get(CHECK, params=params, headers=headers or KEY)


async def test_the_known_bad_address_is_reported_with_full_confidence(
    mock_client: httpx.AsyncClient,
) -> None:
    answer = await _check(mock_client, "185.220.101.34")
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert set(data) == FIELDS
    assert data["ipAddress"] == "185.220.101.34"
    assert (data["isPublic"], data["ipVersion"], data["isTor"]) == (True, 4, True)
    assert data["abuseConfidenceScore"] == 100
    assert data["totalReports"] == 1204
    assert data["numDistinctUsers"] > 0
    assert data["lastReportedAt"]
    assert answer.headers["X-RateLimit-Limit"] == "1000"
    assert int(answer.headers["X-RateLimit-Remaining"]) < 1000


@pytest.mark.parametrize(
    ("address", "whitelisted"),
    [("1.1.1.1", True), ("4.2.2.2", False), ("2606:4700:4700::1111", False)],
    ids=["known-good", "unknown", "unlisted-ipv6"],
)
async def test_a_clean_or_unknown_address_scores_zero(
    mock_client: httpx.AsyncClient, address: str, whitelisted: bool
) -> None:
    answer = await _check(mock_client, address)
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert set(data) == FIELDS
    assert data["abuseConfidenceScore"] == 0
    assert data["totalReports"] == 0
    assert data["isWhitelisted"] is whitelisted
    assert data["ipVersion"] == (6 if ":" in address else 4)


async def test_a_missing_key_is_refused_in_abuseipdbs_shape(
    mock_client: httpx.AsyncClient,
) -> None:
    answer = await mock_client.get(CHECK, params={"ipAddress": "185.220.101.34"})
    assert answer.status_code == 401
    (problem,) = answer.json()["errors"]
    assert problem["status"] == 401
    assert "API key" in problem["detail"]


async def test_a_rate_limited_address_is_a_429_with_the_rate_limit_headers(
    mock_client: httpx.AsyncClient,
) -> None:
    answer = await _check(mock_client, "208.67.222.222")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "30"
    assert answer.headers["X-RateLimit-Limit"] == "1000"
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert int(answer.headers["X-RateLimit-Reset"]) > time.time()
    (problem,) = answer.json()["errors"]
    assert problem["status"] == 429


async def test_a_failing_address_is_a_server_error(mock_client: httpx.AsyncClient) -> None:
    answer = await _check(mock_client, "9.9.9.9")
    assert answer.status_code == 500
    assert answer.json()["errors"][0]["status"] == 500


async def test_a_slow_address_answers_after_its_delay(mock_client: httpx.AsyncClient) -> None:
    answer = await _check(mock_client, "8.8.4.4")
    assert answer.status_code == 200
    assert answer.json()["data"]["ipAddress"] == "8.8.4.4"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "ipAddress"),
        ({"ipAddress": "not-an-address"}, "ipAddress"),
        ({"ipAddress": "1.1.1.1", "maxAgeInDays": "366"}, "maxAgeInDays"),
    ],
    ids=["missing-address", "invalid-address", "max-age-too-long"],
)
async def test_an_invalid_query_is_unprocessable(
    mock_client: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    answer = await mock_client.get(CHECK, params=params, headers=KEY)
    assert answer.status_code == 422
    (problem,) = answer.json()["errors"]
    assert problem["source"] == {"parameter": parameter}


async def test_the_rejected_key_is_refused(mock_client: httpx.AsyncClient) -> None:
    answer = await _check(mock_client, "185.220.101.34", Key="rejected-by-mock")
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["status"] == 401
