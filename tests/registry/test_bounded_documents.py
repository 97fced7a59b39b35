"""A manifest cannot make the server do unbounded work (issue 17, defect 1).

A 287-byte YAML manifest of nested anchors and aliases used to expand to ten million
nodes on the event loop, blocking every tenant. Now aliases are refused before anything
is built, and reading the document runs off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
import yaml

from assay.engine.documents import (
    MAX_DOCUMENT_CHARS,
    MAX_DOCUMENT_DEPTH,
    MAX_DOCUMENT_NODES,
    DocumentRefused,
    load_document,
)
from assay.registry import manifest as manifests
from tests.support.models import RULES_MANIFEST, auth


def alias_bomb(levels: int, width: int = 9) -> str:
    """`levels` lines of anchors, each aliasing the previous one `width` times: the
    document expands to width**levels nodes (ten million at seven levels)."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [1, 2, 4, 7, 9, 12])
def test_anchors_and_aliases_are_refused_before_anything_is_built(levels: int) -> None:
    text = alias_bomb(levels)
    with pytest.raises(DocumentRefused) as refused:
        load_document(text)
    assert refused.value.code == "aliases_refused"


def test_a_lone_anchor_is_refused_too() -> None:
    with pytest.raises(DocumentRefused, match="anchors and aliases"):
        load_document("schema: &s {fields: []}\nspec: {kind: rules}\n")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("x" * (MAX_DOCUMENT_CHARS + 1), "too_large"),
        ("[" * (MAX_DOCUMENT_DEPTH + 1) + "]" * (MAX_DOCUMENT_DEPTH + 1), "too_deep"),
        ("{a: " * (MAX_DOCUMENT_DEPTH + 1) + "1" + "}" * (MAX_DOCUMENT_DEPTH + 1), "too_deep"),
        (json.dumps(list(range(MAX_DOCUMENT_NODES))), "too_many_nodes"),
        ("\n".join(f"k{i}: {i}" for i in range(MAX_DOCUMENT_NODES // 2 + 1)), "too_many_nodes"),
        ("a: [1, 2\n", "unparsable"),
    ],
    ids=["chars", "json-depth", "yaml-depth", "json-nodes", "yaml-nodes", "broken"],
)
def test_documents_past_a_bound_are_refused_with_a_code(text: str, code: str) -> None:
    with pytest.raises(DocumentRefused) as refused:
        load_document(text)
    assert refused.value.code == code


def test_documents_within_the_bounds_read_as_json_or_yaml() -> None:
    assert load_document(json.dumps(RULES_MANIFEST)) == RULES_MANIFEST
    assert load_document(yaml.safe_dump(RULES_MANIFEST)) == RULES_MANIFEST
    nested = "[" * MAX_DOCUMENT_DEPTH + "]" * MAX_DOCUMENT_DEPTH
    assert load_document(nested) is not None


@pytest.mark.parametrize("levels", [2, 5, 7])
async def test_an_alias_bomb_manifest_is_a_422_naming_the_reason(
    client: httpx.AsyncClient, owner_token: str, levels: int
) -> None:
    created = await client.post(
        "/v1/models", json={"name": "bomb", "kind": "rules"}, headers=auth(owner_token)
    )
    assert created.status_code == 201, created.text
    answer = await client.post(
        "/v1/models/bomb/versions",
        data={"manifest": alias_bomb(levels)},
        headers=auth(owner_token),
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["code"] == "aliases_refused"


async def test_livez_answers_while_a_manifest_is_being_read(
    client: httpx.AsyncClient, owner_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest is read off the event loop: while the reading is held up (here on
    purpose, until /livez has answered), the loop still serves other requests. Were
    the reading on the loop, /livez could not answer until the reading gave up."""
    reading = threading.Event()
    livez_answered = threading.Event()
    held_until_livez: list[bool] = []
    real_parse = manifests.parse_manifest

    def slow_parse(text: str) -> dict[str, object]:
        reading.set()
        held_until_livez.append(livez_answered.wait(timeout=30))
        return real_parse(text)

    monkeypatch.setattr(manifests, "parse_manifest", slow_parse)
    created = await client.post(
        "/v1/models", json={"name": "slow", "kind": "rules"}, headers=auth(owner_token)
    )
    assert created.status_code == 201, created.text
    upload = asyncio.create_task(
        client.post(
            "/v1/models/slow/versions",
            data={"manifest": json.dumps(RULES_MANIFEST)},
            headers=auth(owner_token),
        )
    )
    assert await asyncio.to_thread(reading.wait, 30)
    livez = await client.get("/livez")
    assert livez.status_code == 200
    livez_answered.set()
    registered = await upload
    assert registered.status_code == 201, registered.text
    assert held_until_livez == [True]
