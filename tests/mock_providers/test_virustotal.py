"""The mock VirusTotal v3 answers as VirusTotal does: objects, error codes, url ids."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from assay.mock_providers.virustotal import decode_url_identifier, url_identifier

API = "/virustotal/api/v3"
KEY = {"x-apikey": "test-key"}
EVIL_URL = "https://evil-example.com/path"
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"
EICAR_SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
STAT_NAMES = {"harmless", "malicious", "suspicious", "undetected", "timeout"}


def _path(collection: str, value: str) -> str:
    identifier = url_identifier(value) if collection == "urls" else value
    return f"{API}/{collection}/{identifier}"


@pytest.mark.parametrize(
    ("collection", "value", "type_name", "malicious", "engines"),
    [
        ("ip_addresses", "185.220.101.34", "ip_address", 7, 92),
        ("ip_addresses", "1.1.1.1", "ip_address", 0, 92),
        ("domains", "evil-example.com", "domain", 9, 91),
        ("domains", "example.com", "domain", 0, 91),
        ("urls", EVIL_URL, "url", 5, 90),
        ("urls", "https://example.com/", "url", 0, 90),
        ("files", EICAR_SHA256, "file", 62, 76),
    ],
    ids=["bad-ip", "good-ip", "bad-domain", "good-domain", "bad-url", "good-url", "bad-file"],
)
async def test_a_known_indicator_is_an_object_with_its_analysis_stats(
    mock_client: httpx.AsyncClient,
    collection: str,
    value: str,
    type_name: str,
    malicious: int,
    engines: int,
) -> None:
    answer = await mock_client.get(_path(collection, value), headers=KEY)
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["type"] == type_name
    assert data["links"]["self"] == f"http://mock.test{API}/{collection}/{data['id']}"
    attributes = data["attributes"]
    stats = attributes["last_analysis_stats"]
    assert set(stats) == STAT_NAMES
    assert stats["malicious"] == malicious
    assert sum(stats.values()) == engines
    assert isinstance(attributes["last_analysis_date"], int)
    assert isinstance(attributes["reputation"], int)
    assert isinstance(attributes["tags"], list)


async def test_an_ip_address_carries_its_network_owner(mock_client: httpx.AsyncClient) -> None:
    answer = await mock_client.get(f"{API}/ip_addresses/185.220.101.34", headers=KEY)
    data = answer.json()["data"]
    assert data["id"] == "185.220.101.34"
    assert data["attributes"]["country"] == "DE"
    assert data["attributes"]["asn"] == 60729
    assert data["attributes"]["reputation"] < 0
    assert "tor" in data["attributes"]["tags"]


async def test_the_bad_url_is_flagged_by_few_engines_but_flagged(
    mock_client: httpx.AsyncClient,
) -> None:
    # What the demo shows: 5 of 90 is a malicious URL, although 5/90 is a small ratio.
    answer = await mock_client.get(_path("urls", EVIL_URL), headers=KEY)
    data = answer.json()["data"]
    stats = data["attributes"]["last_analysis_stats"]
    assert stats["malicious"] == 5
    assert stats["malicious"] / sum(stats.values()) < 0.1
    # A URL object's id is the SHA-256 of the URL, as VirusTotal's is.
    assert data["id"] == hashlib.sha256(EVIL_URL.encode()).hexdigest()
    assert data["attributes"]["url"] == EVIL_URL


@pytest.mark.parametrize("hash_name", ["md5", "sha1", "sha256"])
async def test_a_file_is_found_by_any_of_its_hashes(
    mock_client: httpx.AsyncClient, hash_name: str
) -> None:
    value = {"md5": EICAR_MD5, "sha1": EICAR_SHA1, "sha256": EICAR_SHA256}[hash_name]
    answer = await mock_client.get(f"{API}/files/{value.upper()}", headers=KEY)
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["id"] == EICAR_SHA256
    attributes = data["attributes"]
    assert (attributes["md5"], attributes["sha1"], attributes["sha256"]) == (
        EICAR_MD5,
        EICAR_SHA1,
        EICAR_SHA256,
    )


@pytest.mark.parametrize(
    ("collection", "value"),
    [
        ("ip_addresses", "4.2.2.2"),
        ("ip_addresses", "93.184.215.14"),
        ("domains", "unknown-example.org"),
        ("urls", "https://unknown-example.org/landing"),
        ("files", "7ccce6fc07aac6c714b2dfbedae1a438c5229e4c68c524d6e076d34f9c5915f1"),
    ],
    ids=["unknown-ip", "unlisted-ip", "unknown-domain", "unknown-url", "unknown-file"],
)
async def test_an_unknown_indicator_is_not_found(
    mock_client: httpx.AsyncClient, collection: str, value: str
) -> None:
    answer = await mock_client.get(_path(collection, value), headers=KEY)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NotFoundError"
    assert answer.json()["error"]["message"]


async def test_a_missing_api_key_is_refused_in_virustotals_shape(
    mock_client: httpx.AsyncClient,
) -> None:
    for headers in ({}, {"x-apikey": "  "}):
        answer = await mock_client.get(f"{API}/ip_addresses/185.220.101.34", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "AuthenticationRequiredError"
        assert "data" not in answer.json()


async def test_a_rate_limited_indicator_exceeds_the_quota(mock_client: httpx.AsyncClient) -> None:
    answer = await mock_client.get(f"{API}/ip_addresses/208.67.222.222", headers=KEY)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "30"
    assert answer.json()["error"]["code"] == "QuotaExceededError"


async def test_a_failing_indicator_is_a_server_error(mock_client: httpx.AsyncClient) -> None:
    answer = await mock_client.get(f"{API}/domains/failing.example.net", headers=KEY)
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "TransientError"


async def test_a_slow_indicator_answers_after_its_delay(mock_client: httpx.AsyncClient) -> None:
    answer = await mock_client.get(f"{API}/domains/slow.example.net", headers=KEY)
    assert answer.status_code == 200
    assert answer.json()["data"]["id"] == "slow.example.net"


def test_a_url_id_is_unpadded_url_safe_base64() -> None:
    # "?>" encodes to characters that differ between the standard and URL-safe alphabets.
    url = "https://evil-example.com/?q=>>?"
    identifier = url_identifier(url)
    assert "=" not in identifier
    assert "+" not in identifier
    assert "/" not in identifier
    assert identifier == base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    assert decode_url_identifier(identifier) == url


@pytest.mark.parametrize(
    "identifier",
    ["not base64!", base64.urlsafe_b64encode(b"no scheme").decode(), "%%%"],
    ids=["punctuation", "not-a-url", "percent"],
)
def test_an_identifier_that_is_not_a_url_decodes_to_nothing(identifier: str) -> None:
    assert decode_url_identifier(identifier) is None


async def test_a_url_id_that_names_no_url_is_not_found(mock_client: httpx.AsyncClient) -> None:
    answer = await mock_client.get(f"{API}/urls/thisurlidmakesnosenseatall", headers=KEY)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NotFoundError"


async def test_an_invalid_ip_address_is_an_invalid_argument(
    mock_client: httpx.AsyncClient,
) -> None:
    answer = await mock_client.get(f"{API}/ip_addresses/999.1.1.1", headers=KEY)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidArgumentError"


async def test_the_rejected_key_is_wrong_credentials(mock_client: httpx.AsyncClient) -> None:
    answer = await mock_client.get(
        f"{API}/ip_addresses/185.220.101.34", headers={"x-apikey": "rejected-by-mock"}
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "WrongCredentialsError"
