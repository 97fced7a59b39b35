"""Request limits: body size, uploads, JSON structure, trusted hosts, server options."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from assay.core.config_check import production_problems
from assay.http.json_limits import (
    NUL_CHARACTER,
    TOO_DEEP,
    TOO_LONG,
    UNPAIRED_SURROGATE,
    JsonStructureLimits,
    refused_escape,
)
from assay.http.stack import enforced_allowed_hosts
from assay.server import HTTP_PROTOCOL, uvicorn_options
from assay.settings import Settings

from .conftest import ClientFactory

# --- bodies and uploads ------------------------------------------------------------------


async def test_ordinary_routes_refuse_bodies_above_the_ordinary_limit(
    make_client: ClientFactory,
) -> None:
    async with make_client(max_body_bytes=4096, max_upload_bytes=65536) as http:
        small = await http.post("/probe/raw", content=b"x" * 4096)
        declared = await http.post("/probe/raw", content=b"x" * 5000)

        async def stream() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"x" * 1024

        streamed = await http.post("/probe/raw", content=stream())
    assert small.json() == {"received": 4096}
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json()["type"] == "urn:assay:problem:payload-too-large"


async def test_upload_routes_accept_up_to_the_upload_limit(make_client: ClientFactory) -> None:
    async with make_client(max_body_bytes=4096, max_upload_bytes=65536) as http:
        accepted = await http.post("/probe/upload", content=b"x" * 60000)

        async def stream() -> AsyncIterator[bytes]:
            for _ in range(70):
                yield b"x" * 1024

        streamed = await http.post("/probe/upload", content=stream())
        declared = await http.post("/probe/upload", content=b"x" * 70000)
    assert accepted.json() == {"received": 60000}
    assert streamed.status_code == 413
    assert declared.status_code == 413
    assert "65536" in declared.json()["detail"]


async def test_json_bodies_obey_the_ordinary_limit_even_on_upload_routes(
    make_client: ClientFactory,
) -> None:
    # JSON is measured before routing, so it never gets the upload allowance.
    async with make_client(max_body_bytes=4096, max_upload_bytes=65536) as http:
        response = await http.post(
            "/probe/upload",
            content=b'"' + b"x" * 5000 + b'"',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413


# --- JSON structure ----------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def test_deeply_nested_json_is_refused_before_parsing(make_client: ClientFactory) -> None:
    async with make_client(max_json_depth=16) as http:
        within = await http.post(
            "/probe/json",
            content=b'{"name": "a", "count": 1, "x": ' + nested(15) + b"}",
            headers={"content-type": "application/json"},
        )
        too_deep = await http.post(
            "/probe/json",
            content=b'{"name": "a", "count": 1, "x": ' + nested(16) + b"}",
            headers={"content-type": "application/json"},
        )
        hostile = await http.post(
            "/probe/json", content=nested(100_000), headers={"content-type": "application/json"}
        )
    assert within.status_code == 200
    for response in (too_deep, hostile):
        assert response.status_code == 413
        body = response.json()
        assert body["type"] == "urn:assay:problem:payload-too-large"
        assert body["errors"][0]["code"] == TOO_DEEP


async def test_overlong_json_arrays_are_refused(make_client: ClientFactory) -> None:
    async with make_client(max_json_array_length=100) as http:
        within = await http.post(
            "/probe/json",
            json={"name": "a", "count": 1, "x": list(range(100))},
        )
        too_long = await http.post(
            "/probe/json",
            json={"name": "a", "count": 1, "x": list(range(101))},
        )
        problem_json = await http.post(
            "/probe/json",
            content=json.dumps([[0] * 101]).encode(),
            headers={"content-type": "application/merge-patch+json"},
        )
    assert within.status_code == 200
    assert too_long.status_code == 413
    assert too_long.json()["errors"][0]["code"] == TOO_LONG
    assert problem_json.status_code == 413


async def test_brackets_and_commas_inside_strings_do_not_count(
    make_client: ClientFactory,
) -> None:
    async with make_client(max_json_depth=4, max_json_array_length=3) as http:
        response = await http.post(
            "/probe/json",
            json={"name": '[[[[[[,,,,,]"\\' + "{" * 20, "count": 1},
        )
    assert response.status_code == 200


def reference_violation(value: Any, max_depth: int, max_length: int) -> str | None:
    """The same limits measured on the parsed document, recursively."""

    def depth(node: Any) -> int:
        if isinstance(node, list):
            return 1 + max((depth(item) for item in node), default=0)
        if isinstance(node, dict):
            return 1 + max((depth(item) for item in node.values()), default=0)
        return 0

    def longest(node: Any) -> int:
        if isinstance(node, list):
            return max([len(node), *(longest(item) for item in node)])
        if isinstance(node, dict):
            return max((longest(item) for item in node.values()), default=0)
        return 0

    too_long = longest(value) > max_length
    too_deep = depth(value) > max_depth
    if too_long and too_deep:
        return "either"
    return TOO_LONG if too_long else TOO_DEEP if too_deep else None


def random_document(rng: random.Random, depth: int) -> Any:
    kind = rng.random()
    if depth <= 0 or kind < 0.3:
        return rng.choice([1, -2.5e3, "s", 'q"[{,', "\\", True, None, ""])
    if kind < 0.65:
        return [random_document(rng, depth - 1) for _ in range(rng.randint(0, 7))]
    return {f"k{n}[,": random_document(rng, depth - 1) for n in range(rng.randint(0, 5))}


def test_pre_check_agrees_with_a_recursive_measurement() -> None:
    rng = random.Random(20261123)  # fixed: the same documents on every run
    limits = JsonStructureLimits(max_depth=5, max_array_length=5)
    for _ in range(2000):
        document = random_document(rng, rng.randint(0, 9))
        expected = reference_violation(document, 5, 5)
        got = limits.violation(json.dumps(document).encode())
        if expected == "either":
            assert got in (TOO_DEEP, TOO_LONG), document
        else:
            assert got == expected, document


def test_malformed_json_is_left_to_the_parser() -> None:
    limits = JsonStructureLimits(max_depth=3, max_array_length=3)
    assert limits.violation(b"[1, 2") is None
    assert limits.violation(b'{"a": "unterminated') is None
    assert limits.violation(b"[[[[[[") == TOO_DEEP  # unclosed, but still deeper than 3


# --- text no database stores -------------------------------------------------------------

ESCAPES = [
    (b'{"a": "x"}', None),
    (b'{"a": "\\u0000"}', NUL_CHARACTER),
    (b'{"a": "\\u00000"}', NUL_CHARACTER),
    (b'{"a": "\\u0001\\u0020\\u00e9"}', None),
    (b'{"a": "\\ud800"}', UNPAIRED_SURROGATE),
    (b'{"a": "\\uDBFF"}', UNPAIRED_SURROGATE),
    (b'{"a": "\\udc00"}', UNPAIRED_SURROGATE),
    (b'{"a": "\\uDFFFx"}', UNPAIRED_SURROGATE),
    (b'{"a": "\\ud83d\\ude00"}', None),  # a pair: U+1F600
    (b'{"a": "\\uD83D\\uDE00\\uDBFF\\uDFFF"}', None),
    (b'{"a": "\\ude00\\ud83d"}', UNPAIRED_SURROGATE),  # reversed: two halves
    (b'{"a": "\\ud83d\\ud83d\\ude00"}', UNPAIRED_SURROGATE),
    (b'{"a": "\\ud83d x \\ude00"}', UNPAIRED_SURROGATE),
    (b'{"a": "\\ud83d\\n"}', UNPAIRED_SURROGATE),
    (b'{"a": "\\ud800\\udczz"}', UNPAIRED_SURROGATE),  # what follows is no escape
    (b'{"\\u0000": 1}', NUL_CHARACTER),  # in a key
    # An escaped backslash, then the text u0000: no escape at all.
    (b'{"a": "\\\\u0000"}', None),
    (b'{"a": "\\\\\\\\ud800"}', None),
    # An escaped backslash, then a real escape.
    (b'{"a": "\\\\\\u0000"}', NUL_CHARACTER),
    (b'{"a": "\\\\\\ud800"}', UNPAIRED_SURROGATE),
    (b'{"a": "\\"\\u0000"}', NUL_CHARACTER),
    # Malformed escapes are the parser's to refuse.
    (b'{"a": "\\u00"}', None),
    (b'{"a": "\\uzzzz"}', None),
    (b'{"a": "x\\', None),
]


@pytest.mark.parametrize(("body", "expected"), ESCAPES, ids=[repr(b) for b, _ in ESCAPES])
def test_refused_escapes_are_found_exactly(body: bytes, expected: str | None) -> None:
    assert refused_escape(body) == expected


def _reference_code(text: str) -> str | None:
    """The rule on the parsed document: json.loads joins escaped pairs, so any
    surrogate left in a string is unpaired."""

    def strings(node: Any) -> Any:
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from strings(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from strings(value)

    for value in strings(json.loads(text)):
        for char in value:
            if char == "\x00":
                return NUL_CHARACTER
            if "\ud800" <= char <= "\udfff":
                return UNPAIRED_SURROGATE
    return None


def test_the_escape_scan_agrees_with_the_parsed_document() -> None:
    rng = random.Random(20261128)  # fixed: the same documents on every run
    pieces = ["a", "é", "\\", "\\u", "u0000", '"', "\x00", "\ud800", "\udc00", "\U0001f600"]
    for _ in range(3000):
        document = {
            "".join(rng.choices(pieces, k=rng.randint(0, 3))): [
                "".join(rng.choices(pieces, k=rng.randint(0, 6))) for _ in range(3)
            ]
        }
        text = json.dumps(document)  # escapes every non-ASCII character, pairs as pairs
        if rng.random() < 0.5:
            text = text.upper().replace("\\U", "\\u")  # upper-case hex digits
        # The first refused character in document order; the scan reports the first in
        # text order: the same, since json.dumps keeps the order.
        assert refused_escape(text.encode()) == _reference_code(text), text


# --- trusted hosts -----------------------------------------------------------------------


async def test_outside_production_any_host_is_served_unless_a_list_is_set(
    make_client: ClientFactory,
) -> None:
    async with make_client(base_url="http://anything.example") as http:
        assert (await http.get("/probe/ok")).status_code == 200


async def test_an_unknown_host_gets_a_400_problem(make_client: ClientFactory) -> None:
    async with make_client(
        base_url="http://evil.example",
        allowed_hosts=["api.example.org", "*.tenants.example.org"],
        public_url="https://assay.example.org",
    ) as http:
        refused = await http.get("/probe/ok")
        ok_exact = await http.get("/probe/ok", headers={"host": "API.example.org:8443"})
        ok_wildcard = await http.get("/probe/ok", headers={"host": "acme.tenants.example.org"})
        apex = await http.get("/probe/ok", headers={"host": "tenants.example.org"})
        public = await http.get("/probe/ok", headers={"host": "assay.example.org"})
        probe = await http.get("/livez", headers={"host": "10.1.2.3:8000"})
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert "evil" not in refused.text
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert [ok_exact.status_code, ok_wildcard.status_code, public.status_code] == [200, 200, 200]
    assert apex.status_code == 400
    assert probe.status_code == 200  # orchestrators probe by pod address


def test_production_always_enforces_hosts_with_the_public_url_allowed(tmp_path: Path) -> None:
    settings = Settings(env="production", data_dir=tmp_path, public_url="https://a.example.org")
    assert enforced_allowed_hosts(settings) == ["a.example.org"]
    settings = Settings(env="production", data_dir=tmp_path, public_url="https://[2001:db8::1]")
    assert enforced_allowed_hosts(settings) == ["2001:db8::1"]
    assert enforced_allowed_hosts(Settings(data_dir=tmp_path)) is None
    assert not any("ALLOWED_HOSTS" in p for p in production_problems(settings))


async def test_ipv6_literal_hosts_are_matched(make_client: ClientFactory) -> None:
    async with make_client(
        allowed_hosts=["api.example.org"], public_url="https://[2001:db8::1]:8443"
    ) as http:
        response = await http.get("/probe/ok", headers={"host": "[2001:db8::1]:8443"})
    assert response.status_code == 200


# --- server options ----------------------------------------------------------------------


def test_server_options_bound_headers_and_concurrency(
    settings_factory: Callable[..., Settings],
) -> None:
    options = uvicorn_options(settings_factory(max_header_bytes=8192, max_concurrency=500))
    assert options["http"] == HTTP_PROTOCOL
    assert options["h11_max_incomplete_event_size"] == 8192
    assert options["limit_concurrency"] == 500
    assert options["server_header"] is False
    assert options["proxy_headers"] is False


def test_structure_limits_cannot_be_switched_off() -> None:
    with pytest.raises(ValueError, match="max_json_array_length"):
        Settings(max_json_array_length=0)
    with pytest.raises(ValueError, match="max_json_depth"):
        Settings(max_json_depth=1000)
