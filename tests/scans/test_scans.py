"""Scans end to end through the API: the vulnerable mock is found out, the refusing one
is not, budgets and cancellation hold, reports come out in every format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from assay.audit.models import SecurityEvent
from assay.core.tenancy import across_tenants
from assay.events.models import Event
from assay.scans.models import ScanAttempt
from tests.scans.conftest import (
    SYSTEM_PROMPT,
    TARGET_KEY,
    Scanner,
    all_attempts,
    mock_requests,
    start_scan,
    wait_for_scan,
)
from tests.scans_reports.sarif_schema import sarif_validator


def _findings_by_label(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["taxonomy"]: f for f in findings}


async def test_the_vulnerable_target_is_found_out_with_the_canary_as_evidence(
    client: httpx.AsyncClient, scanner: Scanner, app: FastAPI
) -> None:
    started = await start_scan(
        client,
        scanner,
        target="vulnerable",
        probe_sets=["prompt-injection", "system-prompt-leakage"],
        transforms=["base64"],
    )
    assert started["state"] in ("queued", "running")
    assert started["events_url"] == f"/v1/jobs/{started['job_id']}/events"
    scan = await wait_for_scan(client, scanner, started["id"])
    assert scan["state"] == "succeeded", scan
    assert scan["done"] == scan["total"] > 0
    assert all(s["done"] == s["planned"] for s in scan["probe_sets"])

    findings = (
        await client.get(f"/v1/scans/{started['id']}/findings", headers=scanner.headers)
    ).json()
    found = _findings_by_label(findings)
    assert found["LLM01:2025"]["hits"] > 0
    assert found["LLM07:2025"]["hits"] > 0
    assert found["LLM07:2025"]["severity"] != "none"
    # The scan's canary, planted in the system prompt it sent, is the leak's evidence.
    assert any("ASSAY-CN-" in excerpt for excerpt in found["LLM07:2025"]["evidence"])
    # The summary written when the job ended says the same.
    assert {f["taxonomy"] for f in scan["findings"] if f["hits"]} >= {"LLM01:2025", "LLM07:2025"}

    attempts = await all_attempts(client, scanner, started["id"])
    assert len(attempts) == scan["total"]
    assert any(a["transforms"] == ["base64"] and a["hit"] for a in attempts)
    leaked = [a for a in attempts if a["probe_set"] == "system-prompt-leakage" and a["hit"]]
    assert leaked
    assert all(a["answer"] for a in leaked)
    assert all(d["rationale"] for a in leaked for d in a["detectors"])

    # The target received the owner's system prompt, and never the credential in a log.
    sent = mock_requests(scanner.mock)
    assert len(sent) == scan["total"]
    assert all(entry["has_system"] for entry in sent)
    assert TARGET_KEY not in json.dumps(sent)

    # Reading the answers was audited, with the reader.
    await app.state.audit_reads.flush()
    async with app.state.database.sessionmaker() as db:
        reads = (
            await db.scalars(
                across_tenants(
                    select(SecurityEvent).where(SecurityEvent.action == "scan.results_read"),
                    "test: audited reads",
                )
            )
        ).all()
    assert {r.details["what"] for r in reads} >= {"attempts", "findings"}
    assert {r.actor_id for r in reads} == {str(scanner.member.user_id)}

    # Answers are sealed at rest.
    async with app.state.database.sessionmaker() as db:
        rows = (
            await db.scalars(across_tenants(select(ScanAttempt), "test: the sealed answers"))
        ).all()
        completed = (
            await db.scalars(
                across_tenants(select(Event).where(Event.type == "scan.completed"), "test")
            )
        ).all()
    assert rows
    assert all(SYSTEM_PROMPT.encode() not in (r.answer_encrypted or b"") for r in rows)
    assert all(b"ASSAY-CN-" not in (r.answer_encrypted or b"") for r in rows)
    assert len(completed) == 1
    assert completed[0].data["scan_id"] == started["id"]
    assert completed[0].data["hits"] == scan["hits"] > 0


async def test_the_refusing_target_yields_no_finding(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    started = await start_scan(client, scanner, target="refusing", transforms=["leetspeak"])
    scan = await wait_for_scan(client, scanner, started["id"])
    assert scan["state"] == "succeeded", scan
    assert scan["hits"] == 0
    attempts = await all_attempts(client, scanner, started["id"])
    assert attempts
    assert all(a["status"] == "answered" and not a["hit"] for a in attempts)
    findings = (
        await client.get(f"/v1/scans/{started['id']}/findings", headers=scanner.headers)
    ).json()
    assert findings
    assert all(f["hits"] == 0 and f["severity"] == "none" for f in findings)
    junit = await client.get(
        f"/v1/scans/{started['id']}/report", params={"format": "junit"}, headers=scanner.headers
    )
    suites = ET.fromstring(junit.content)  # noqa: S314 - our own output, parsed to check it
    assert sum(int(s.get("failures", "0")) for s in suites.iter("testsuite")) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_report_format_is_served(client: httpx.AsyncClient, scanner: Scanner) -> None:
    started = await start_scan(client, scanner, target="vulnerable", probe_sets=["output-handling"])
    await wait_for_scan(client, scanner, started["id"])
    expected = {
        "json": "application/json",
        "sarif": "application/sarif+json",
        "junit": "application/xml",
        "html": "text/html",
        "garak": "application/x-ndjson",
    }
    for fmt, content_type in expected.items():
        answer = await client.get(
            f"/v1/scans/{started['id']}/report", params={"format": fmt}, headers=scanner.headers
        )
        assert answer.status_code == 200, (fmt, answer.text)
        assert answer.headers["content-type"].startswith(content_type)
        assert "attachment" in answer.headers["content-disposition"]
    html = (
        await client.get(
            f"/v1/scans/{started['id']}/report", params={"format": "html"}, headers=scanner.headers
        )
    ).text
    # The vulnerable mock echoed executable markup; the report shows it, inert.
    assert "<script" not in html.lower()
    assert "&lt;script" in html.lower() or "&lt;img" in html.lower()
    sarif = (
        await client.get(
            f"/v1/scans/{started['id']}/report", params={"format": "sarif"}, headers=scanner.headers
        )
    ).json()
    # A real scan's SARIF, validated against the official OASIS schema.
    sarif_validator().validate(sarif)
    assert sarif["runs"][0]["results"]
    bad = await client.get(
        f"/v1/scans/{started['id']}/report", params={"format": "pdf"}, headers=scanner.headers
    )
    assert bad.status_code == 422


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_budget_caps_the_requests_sent(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    started = await start_scan(
        client,
        scanner,
        target="vulnerable",
        probe_sets=["prompt-injection"],
        max_requests=3,
        concurrency=1,
    )
    scan = await wait_for_scan(client, scanner, started["id"])
    assert scan["state"] == "succeeded"
    assert scan["budget"]["requests_used"] == 3
    attempts = await all_attempts(client, scanner, started["id"])
    assert sum(a["status"] == "answered" for a in attempts) == 3
    skipped = [a for a in attempts if a["status"] == "skipped"]
    assert len(skipped) == len(attempts) - 3 > 0
    assert all(a["error"] == "the scan's budget is spent" for a in skipped)
    assert len(mock_requests(scanner.mock)) == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_token_budget_stops_a_scan_once_spent(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    started = await start_scan(
        client,
        scanner,
        target="vulnerable",
        probe_sets=["prompt-injection"],
        max_tokens=5,
        concurrency=1,
    )
    scan = await wait_for_scan(client, scanner, started["id"])
    assert scan["state"] == "succeeded"
    # The first answer's usage (the mock counts words) spends the whole budget.
    assert scan["budget"]["requests_used"] == 1
    assert scan["budget"]["tokens_used"] > 5
    assert len(mock_requests(scanner.mock)) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_target_asking_to_slow_down_is_retried_after_retry_after(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    from tests.scans.conftest import chat_target, register_target

    await register_target(
        client, scanner, "flaky", chat_target(scanner.mock, "flaky", concurrency=1)
    )
    started = await start_scan(
        client, scanner, target="flaky", probe_sets=["prompt-injection"], concurrency=1
    )
    scan = await wait_for_scan(client, scanner, started["id"])
    assert scan["state"] == "succeeded"
    attempts = await all_attempts(client, scanner, started["id"])
    assert all(a["status"] == "answered" for a in attempts)
    statuses = [entry["status"] for entry in mock_requests(scanner.mock)]
    assert statuses.count(429) > 0
    assert statuses.count(200) == len(attempts)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_rest_target_gets_the_prompt_as_one_json_value(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    from tests.scans.conftest import register_target

    body = {
        "kind": "rest",
        "url": f"{scanner.mock.base_url}/vulnerable/rest/generate",
        "rest": {"body": {"input": "{{prompt}}", "options": {"n": 1}}, "answer_path": "data.text"},
        "requests_per_minute": 6000,
    }
    await register_target(client, scanner, "rest-bot", body)
    started = await start_scan(client, scanner, target="rest-bot", probe_sets=["prompt-injection"])
    scan = await wait_for_scan(client, scanner, started["id"])
    assert scan["state"] == "succeeded"
    assert scan["hits"] > 0
    sent = mock_requests(scanner.mock)
    assert sent
    assert all(entry["path"].endswith("/rest/generate") for entry in sent)
    assert not any(entry["has_system"] for entry in sent)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_llm_judge_grades_every_answer_as_one_more_detector(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    from tests.scans.conftest import chat_target, register_target

    await register_target(client, scanner, "grader", chat_target(scanner.mock, "judge"))
    unknown = await client.post(
        "/v1/scans",
        json={"target": "vulnerable", "judge": {"target": "nobody"}},
        headers=scanner.headers,
    )
    assert unknown.status_code == 404
    verdicts: dict[str, list[dict[str, Any]]] = {}
    for target in ("vulnerable", "refusing"):
        started = await start_scan(
            client,
            scanner,
            target=target,
            probe_sets=["prompt-injection"],
            judge={"target": "grader", "rubric": "Grade strictly."},
        )
        scan = await wait_for_scan(client, scanner, started["id"])
        assert scan["state"] == "succeeded"
        assert scan["judge"] == "grader"
        verdicts[target] = [
            d
            for a in await all_attempts(client, scanner, started["id"])
            for d in a["detectors"]
            if d["detector"] == "llm-judge/grader"
        ]
    assert verdicts["vulnerable"]
    assert any(d["score"] == 1.0 for d in verdicts["vulnerable"])
    assert verdicts["refusing"]
    assert all(d["score"] == 0.0 and d["rationale"] for d in verdicts["refusing"])
    # The judge got the rubric as its system prompt and each attempt as JSON data.
    graded = [e for e in mock_requests(scanner.mock) if e["mode"] == "judge"]
    assert len(graded) == len(verdicts["vulnerable"]) + len(verdicts["refusing"])
    assert all(e["has_system"] and '"answer"' in e["prompt"] for e in graded)
