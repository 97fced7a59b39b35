"""The edges of provider documents, answers and the breaker: what a definition may not
say, how an odd answer is read, and a cache that cannot answer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from assay.core.breaker import BreakerState, CircuitBreaker
from assay.core.cache import InProcessCache
from assay.indicators.service import canonicalise
from assay.providers.compiled import InvalidProviderDefinition, compile_provider
from assay.providers.requests import build_request
from assay.providers.results import ProviderStatus, evidence_text, score_answer
from assay.settings import Settings

BASE: dict[str, Any] = {
    "format": "assay-provider/v1",
    "name": "edge",
    "title": "Edge",
    "base_url": "https://edge.example.net/api",
    "requests": [
        {
            "types": ["ipv4"],
            "path": ["ip", "{indicator}"],
            "fields": {
                "hits": {"path": "data.items.0.hits", "type": "integer"},
                "label": {"path": "data.label", "type": "string", "default": "none"},
                "ratio": {"path": "data.ratio", "type": "number"},
                "flag": {"path": "data.flag", "type": "boolean"},
                "tags": {"path": "data.tags", "type": "list"},
            },
            "score": "double(hits) * 10.0",
            "evidence": "{hits} hits, label {label}, ratio {ratio}",
        }
    ],
}


def _with(request: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    document = {**BASE, **top}
    if request is not None:
        document["requests"] = [{**BASE["requests"][0], **request}]
    return document


@pytest.mark.parametrize(
    "document",
    [
        _with({"scale": {"kind": "clamp", "half_at": 2}}),
        _with({"scale": {"kind": "saturating"}}),
        _with(levels={"suspicious": 80, "malicious": 60}),
        _with(cache_ttl_seconds={"ipv4": -1}),
        _with({"form": {"ip": "{indicator}"}}),
        _with(credential={"in": "form", "name": "key"}),
        _with({"headers": {"Bad Header": "x"}}),
        _with({"fields": {"Bad-Name": {"path": "a"}}}),
        _with({"path": ["", "{indicator}"]}),
        _with({"query": {"q": "{nope}"}}),
        {**BASE, "requests": [BASE["requests"][0], BASE["requests"][0]]},
        {**BASE, "requests": []},
        {**BASE, "plugin": "some-plugin"},
    ],
    ids=[
        "half-at-with-clamp",
        "saturating-without-half-at",
        "levels-out-of-order",
        "negative-ttl",
        "form-with-get",
        "form-credential-with-get",
        "header-name",
        "field-name",
        "empty-middle-segment",
        "unknown-query-placeholder",
        "one-type-twice",
        "neither-requests-nor-plugin",
        "both-requests-and-plugin",
    ],
)
def test_a_definition_that_cannot_be_right_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidProviderDefinition) as refused:
        compile_provider(document)
    assert refused.value.problems


def test_an_answer_is_read_by_path_type_and_default() -> None:
    provider = compile_provider(BASE)
    request = provider.request_for(canonicalise("1.2.3.4").type)
    assert request is not None
    answer = {"data": {"items": [{"hits": 4}], "ratio": 2, "flag": "yes", "tags": "x"}}
    status, score, _level, evidence, fields, _ = score_answer(
        request, answer, provider.definition.levels
    )
    assert (status, score) == (ProviderStatus.OK, 40.0)
    # A mistyped value is absent: a string is no boolean, no list; an int is a number.
    assert fields == {"hits": 4, "label": "none", "ratio": 2.0, "flag": None, "tags": None}
    assert evidence == "4 hits, label none, ratio 2"


def test_an_answer_missing_what_the_score_reads_is_an_error_not_a_crash() -> None:
    provider = compile_provider(BASE)
    request = provider.request_for(canonicalise("1.2.3.4").type)
    assert request is not None
    status, score, *_rest, detail = score_answer(
        request, {"data": {"items": []}}, provider.definition.levels
    )
    assert (status, score) == (ProviderStatus.ERROR, None)
    assert detail.startswith("the answer does not fit the definition")


def test_evidence_shows_what_is_missing_and_numbers_readably() -> None:
    text = evidence_text("{a} of {b}, {c} and {missing}", {"a": 1234.0, "b": 9876543, "c": 0.5})
    assert text == "1,234 of 9,876,543, 0.5 and ?"


@pytest.mark.parametrize("location", ["query", "form"])
def test_a_credential_in_the_query_or_form_goes_there(location: str) -> None:
    request_doc: dict[str, Any] = {"method": "POST"} if location == "form" else {}
    provider = compile_provider(_with(request_doc, credential={"in": location, "name": "key"}))
    indicator = canonicalise("1.2.3.4")
    request = provider.request_for(indicator.type)
    assert request is not None
    built = build_request(
        provider.definition,
        request.template,
        indicator,
        base_url="https://edge.example.net/api",
        credential="s3cret",
    )
    if location == "query":
        assert built.url.endswith("/api/ip/1.2.3.4?key=s3cret")
        assert built.content is None
    else:
        assert built.content == b"key=s3cret"
        assert built.headers["content-type"] == "application/x-www-form-urlencoded"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(database_url=f"sqlite:///{tmp_path / 'assay.db'}")


class _Unreachable(InProcessCache):
    """A cache backend that is down: every call fails as Redis would."""

    async def get(self, key: str) -> bytes | None:
        raise RedisConnectionError("down")

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        raise RedisConnectionError("down")

    async def delete(self, key: str) -> None:
        raise RedisConnectionError("down")

    async def increment(self, key: str, ttl_seconds: float) -> int:
        raise RedisConnectionError("down")


async def test_a_breaker_whose_cache_is_down_blocks_nothing(settings: Settings) -> None:
    breaker = CircuitBreaker(settings, _Unreachable(16))
    org = uuid.uuid4()
    assert await breaker.blocked(org, "edge") is None
    assert await breaker.failed(org, "edge") is False
    assert await breaker.succeeded(org, "edge") is False
    await breaker.cool_down(org, "edge", 30)
    view = await breaker.view(org, "edge")
    assert (view.state, view.failures, view.cooldown_until) == (BreakerState.CLOSED, 0, None)


async def test_the_first_failure_after_the_cool_down_opens_the_breaker_again(
    settings: Settings,
) -> None:
    breaker = CircuitBreaker(
        settings.model_copy(update={"provider_breaker_failures": 2}), InProcessCache(64)
    )
    org = uuid.uuid4()
    assert await breaker.failed(org, "edge") is False
    assert await breaker.failed(org, "edge") is True
    assert (await breaker.view(org, "edge")).state is BreakerState.OPEN
    # The cool-down passes: only the probation mark is left.
    await breaker._cache.delete(f"provider:{org}:edge:open")
    assert (await breaker.view(org, "edge")).state is BreakerState.HALF_OPEN
    assert await breaker.blocked(org, "edge") is None
    assert await breaker.failed(org, "edge") is True  # one failure is enough now
    await breaker._cache.delete(f"provider:{org}:edge:open")
    assert await breaker.succeeded(org, "edge") is True
    assert (await breaker.view(org, "edge")).state is BreakerState.CLOSED
