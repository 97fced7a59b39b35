"""Provider documents: the shipped ones compile, bad ones are refused with their paths,
requests put the indicator only where it is safe, answers become scores."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from assay.indicators.service import canonicalise
from assay.providers.compiled import (
    InvalidProviderDefinition,
    compile_provider,
    parse_provider_document,
)
from assay.providers.requests import build_request
from assay.providers.results import ProviderStatus, score_answer
from assay.providers.service import BUILTIN_NAMES, builtin_definition


def _vt_answer(malicious: int, suspicious: int = 0, total: int = 90) -> dict[str, Any]:
    stats = {
        "malicious": malicious,
        "suspicious": suspicious,
        "harmless": total - malicious - suspicious,
        "undetected": 0,
    }
    return {"data": {"attributes": {"last_analysis_stats": stats}}}


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_the_shipped_definitions_compile(name: str) -> None:
    provider = compile_provider(builtin_definition(name))
    assert provider.name == name
    assert provider.definition.supports


@pytest.mark.parametrize(
    ("malicious", "suspicious", "at_least", "below"),
    [(0, 0, 0, 1), (1, 0, 30, 45), (5, 0, 85, 95), (7, 2, 95, 100.01)],
    ids=["none", "one-engine", "five-of-ninety", "many"],
)
def test_virustotal_counts_engines_that_flag_not_a_ratio_over_all(
    malicious: int, suspicious: int, at_least: float, below: float
) -> None:
    request = compile_provider(builtin_definition("virustotal")).request_for(
        canonicalise("https://evil-example.com/path").type
    )
    assert request is not None
    levels = compile_provider(builtin_definition("virustotal")).definition.levels
    status, score, *_ = score_answer(request, _vt_answer(malicious, suspicious), levels)
    assert status is ProviderStatus.OK
    assert score is not None
    assert at_least <= score < below
    # FlashThreat scored 5/90 as 5.6 %: "clean". Here five engines are a strong signal.


def test_an_address_on_abuseipdbs_allow_list_scores_zero() -> None:
    provider = compile_provider(builtin_definition("abuseipdb"))
    request = provider.request_for(canonicalise("1.1.1.1").type)
    assert request is not None
    answer = {"data": {"abuseConfidenceScore": 40, "totalReports": 3, "isWhitelisted": True}}
    status, score, _level, evidence, _fields, _ = score_answer(
        request, answer, provider.definition.levels
    )
    assert (status, score) == (ProviderStatus.OK, 0.0)
    assert evidence == "abuse confidence 40 %, 3 reports"


@pytest.mark.parametrize(
    ("name", "indicator", "method", "url", "credential_header"),
    [
        (
            "virustotal",
            "https://evil-example.com/a?b=c",
            "GET",
            # Unpadded URL-safe base64 of the URL, as VirusTotal names URLs.
            "https://vt.test/api/v3/urls/aHR0cHM6Ly9ldmlsLWV4YW1wbGUuY29tL2E_Yj1j",
            "x-apikey",
        ),
        (
            "abuseipdb",
            "2606:4700::1111",
            "GET",
            "https://vt.test/api/v3/check?ipAddress=2606%3A4700%3A%3A1111&maxAgeInDays=90",
            "Key",
        ),
        ("urlhaus", "evil-example.com", "POST", "https://vt.test/api/v3/host/", "Auth-Key"),
    ],
    ids=["virustotal-url", "abuseipdb-ipv6", "urlhaus-host"],
)
def test_requests_place_the_indicator_and_the_credential_where_the_provider_wants(
    name: str, indicator: str, method: str, url: str, credential_header: str
) -> None:
    provider = compile_provider(builtin_definition(name))
    parsed = canonicalise(indicator)
    request = provider.request_for(parsed.type)
    assert request is not None
    built = build_request(
        provider.definition,
        request.template,
        parsed,
        base_url="https://vt.test/api/v3",
        credential="secret-key",
    )
    assert (built.method, built.url) == (method, url)
    assert built.headers[credential_header] == "secret-key"
    assert "secret-key" not in built.url


def test_an_indicator_cannot_leave_its_path_segment() -> None:
    provider = compile_provider(builtin_definition("virustotal"))
    # A domain cannot hold these characters, so build from a hand-made indicator: the
    # template must encode whatever it is given.
    parsed = canonicalise("evil-example.com")
    hostile = type(parsed)(parsed.type, "a/../../admin?x=1#frag", parsed.original)
    request = provider.request_for(parsed.type)
    assert request is not None
    built = build_request(
        provider.definition,
        request.template,
        hostile,
        base_url="https://vt.test/api/v3",
        credential=None,
    )
    url = httpx.URL(built.url)
    assert url.host == "vt.test"
    assert url.raw_path == b"/api/v3/domains/a%2F..%2F..%2Fadmin%3Fx%3D1%23frag"
    assert url.query == b""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"base_url": "x"}, "base_url"),
        ({"link": "https://x.test/{secret}"}, "link"),
        (
            {
                "requests": [
                    {
                        "types": ["ipv4"],
                        "path": ["{host}"],
                        "fields": {"a": {"path": "a"}},
                        "score": "a",
                    }
                ]
            },
            "requests.0.path",
        ),
        (
            {
                "requests": [
                    {
                        "types": ["ipv4"],
                        "headers": {"X-Ind": "{indicator}"},
                        "fields": {"a": {"path": "a"}},
                        "score": "a",
                    }
                ]
            },
            "requests.0.headers",
        ),
        (
            {
                "requests": [
                    {"types": ["ipv4"], "fields": {"a": {"path": "a"}}, "score": "nope > 1"}
                ]
            },
            "requests.0.score",
        ),
        (
            {
                "requests": [
                    {
                        "types": ["ipv4"],
                        "fields": {"a": {"path": "a"}},
                        "score": "a",
                        "evidence": "{b}",
                    }
                ]
            },
            "requests.0",
        ),
    ],
    ids=[
        "short-url",
        "unknown-link-placeholder",
        "unknown-path-placeholder",
        "header-placeholder",
        "unknown-field",
        "evidence-field",
    ],
)
def test_a_bad_definition_is_refused_naming_where(change: dict[str, Any], field: str) -> None:
    document = {**builtin_definition("abuseipdb"), **change}
    with pytest.raises(InvalidProviderDefinition) as refused:
        compile_provider(document)
    assert any(p["field"].startswith(field) for p in refused.value.problems), refused.value.problems


def test_documents_are_read_through_the_bounded_loader() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\n"
    with pytest.raises(InvalidProviderDefinition) as refused:
        parse_provider_document(bomb)
    assert refused.value.problems[0]["code"] == "aliases_refused"
