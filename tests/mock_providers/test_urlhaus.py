"""The mock URLhaus v1 answers URL, host and payload queries as URLhaus does."""

from __future__ import annotations

import httpx
import pytest

API = "/urlhaus/v1"
KEY = {"Auth-Key": "test-key"}
EVIL_URL = "https://evil-example.com/path"
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"


async def _query(client: httpx.AsyncClient, kind: str, **form: str) -> httpx.Response:
    return await client.post(f"{API}/{kind}/", data=form, headers=KEY)


async def test_the_known_bad_url_is_online_malware(mock_client: httpx.AsyncClient) -> None:
    answer = await _query(mock_client, "url", url=EVIL_URL)
    assert answer.status_code == 200
    body = answer.json()
    assert body["query_status"] == "ok"
    assert (body["url"], body["host"]) == (EVIL_URL, "evil-example.com")
    assert body["url_status"] == "online"
    assert body["threat"] == "malware_download"
    assert body["urlhaus_reference"] == f"https://urlhaus.abuse.ch/url/{body['id']}/"
    assert set(body["blacklists"]) == {"spamhaus_dbl", "surbl"}
    assert body["tags"]
    assert body["payloads"][0]["response_sha256"] == EICAR_SHA256


async def test_the_known_bad_host_lists_its_urls(mock_client: httpx.AsyncClient) -> None:
    answer = await _query(mock_client, "host", host="evil-example.com")
    body = answer.json()
    assert body["query_status"] == "ok"
    assert body["host"] == "evil-example.com"
    assert body["firstseen"]
    assert body["url_count"] == "1"
    assert [url["url"] for url in body["urls"]] == [EVIL_URL]
    assert body["urls"][0]["url_status"] == "online"


@pytest.mark.parametrize(
    "form",
    [{"md5_hash": EICAR_MD5}, {"sha256_hash": EICAR_SHA256}],
    ids=["md5", "sha256"],
)
async def test_the_known_bad_payload_is_found_by_either_hash(
    mock_client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    body = (await _query(mock_client, "payload", **form)).json()
    assert body["query_status"] == "ok"
    assert (body["md5_hash"], body["sha256_hash"]) == (EICAR_MD5, EICAR_SHA256)
    assert body["url_count"] == "1"
    assert body["urls"][0]["url"] == EVIL_URL
    assert body["urlhaus_download"].endswith(f"/v1/download/{EICAR_SHA256}/")


@pytest.mark.parametrize(
    ("kind", "form"),
    [
        ("url", {"url": "https://example.com/"}),
        ("url", {"url": "https://unknown-example.org/landing"}),
        ("host", {"host": "example.com"}),
        ("host", {"host": "1.1.1.1"}),
        ("host", {"host": "185.220.101.34"}),
        ("payload", {"sha256_hash": "0" * 64}),
    ],
    ids=["good-url", "unknown-url", "good-host", "good-ip", "ip-without-urls", "unknown-file"],
)
async def test_a_clean_or_unknown_indicator_has_no_results(
    mock_client: httpx.AsyncClient, kind: str, form: dict[str, str]
) -> None:
    answer = await _query(mock_client, kind, **form)
    assert answer.status_code == 200
    assert answer.json() == {"query_status": "no_results"}


@pytest.mark.parametrize(
    ("kind", "form", "status"),
    [
        ("url", {"url": "not a url"}, "invalid_url"),
        ("url", {}, "invalid_url"),
        ("host", {"host": "a/b"}, "invalid_host"),
        ("payload", {"md5_hash": "xyz"}, "invalid_md5_hash"),
        ("payload", {}, "invalid_sha256_hash"),
    ],
    ids=["bad-url", "no-url", "bad-host", "bad-md5", "no-hash"],
)
async def test_an_invalid_query_says_why_in_its_query_status(
    mock_client: httpx.AsyncClient, kind: str, form: dict[str, str], status: str
) -> None:
    answer = await _query(mock_client, kind, **form)
    assert answer.status_code == 200
    assert answer.json() == {"query_status": status}


async def test_a_missing_auth_key_is_refused(mock_client: httpx.AsyncClient) -> None:
    answer = await mock_client.post(f"{API}/url/", data={"url": EVIL_URL})
    assert answer.status_code == 401
    assert answer.json() == {"query_status": "unknown_auth_key"}


@pytest.mark.parametrize(
    ("kind", "form"),
    [
        ("host", {"host": "rate-limited.example.net"}),
        ("url", {"url": "https://rate-limited.example.net/"}),
    ],
    ids=["host", "url"],
)
async def test_a_rate_limited_indicator_is_a_429_with_retry_after(
    mock_client: httpx.AsyncClient, kind: str, form: dict[str, str]
) -> None:
    answer = await _query(mock_client, kind, **form)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "30"
    assert answer.json() == {"query_status": "rate_limited"}


async def test_a_failing_indicator_is_a_server_error(mock_client: httpx.AsyncClient) -> None:
    answer = await _query(mock_client, "host", host="9.9.9.9")
    assert answer.status_code == 500
    assert answer.json() == {"query_status": "internal_error"}


async def test_a_slow_indicator_answers_after_its_delay(mock_client: httpx.AsyncClient) -> None:
    answer = await _query(mock_client, "host", host="slow.example.net")
    assert answer.status_code == 200
    assert answer.json() == {"query_status": "no_results"}


async def test_the_rejected_key_is_refused(mock_client: httpx.AsyncClient) -> None:
    answer = await mock_client.post(
        f"{API}/url/", data={"url": EVIL_URL}, headers={"Auth-Key": "rejected-by-mock"}
    )
    assert answer.status_code == 401
    assert answer.json() == {"query_status": "unknown_auth_key"}
