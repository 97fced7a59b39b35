"""The verifier on hand-built chains: each kind of damage is named where it is."""

from __future__ import annotations

import uuid
from typing import Any

from assay.audit_trail.chain import GENESIS_HASH, ChainVerifier, Report, event_hash


def _chain(length: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    previous = GENESIS_HASH
    for seq in range(1, length + 1):
        event: dict[str, Any] = {
            "id": str(uuid.UUID(int=seq)),
            "org_id": None,
            "seq": seq,
            "occurred_at": f"2026-12-07T10:00:{seq:02d}.000000+00:00",
            "actor_kind": "platform",
            "actor_id": None,
            "action": "org.created",
            "target_kind": "organisation",
            "target_id": str(uuid.UUID(int=100 + seq)),
            "outcome": "success",
            "client_address": None,
            "user_agent": "assay-cli",
            "request_id": None,
            "details": {"name": f"Org {seq}", "note": "ünïcode"},
            "prev_hash": previous,
        }
        event["hash"] = previous = event_hash(event)
        events.append(event)
    return events


def _verify(events: list[dict[str, Any]], head: tuple[int, str] | None = None) -> Report:
    verifier = ChainVerifier("platform")
    for event in events:
        if not verifier.add(event):
            break
    return verifier.finish(head)


def test_an_untouched_chain_verifies_to_its_head() -> None:
    events = _chain(5)
    report = _verify(events, (5, events[-1]["hash"]))
    assert report.ok
    assert (report.events, report.head_seq, report.head_hash) == (5, 5, events[-1]["hash"])


def test_the_sequence_number_is_not_hashed_but_the_order_is() -> None:
    events = _chain(3)
    assert event_hash({**events[1], "seq": 99}) == events[1]["hash"]
    assert event_hash({**events[1], "prev_hash": events[0]["prev_hash"]}) != events[1]["hash"]


def test_a_duplicated_sequence_number_is_an_insertion() -> None:
    events = _chain(4)
    forged = {**events[2], "id": str(uuid.uuid4())}
    forged["hash"] = event_hash(forged)
    problem = _verify([*events[:3], forged, events[3]]).problem
    assert problem is not None
    assert (problem.kind, problem.seq, problem.event_id) == ("inserted", 3, forged["id"])


def test_an_event_slipped_in_and_renumbered_breaks_the_links_after_it() -> None:
    events = _chain(4)
    slipped = {**events[1], "id": str(uuid.uuid4()), "action": "member.added"}
    slipped["hash"] = event_hash(slipped)  # a consistent event of its own
    renumbered = [events[0], events[1], slipped] + [
        {**event, "seq": event["seq"] + 1} for event in events[2:]
    ]
    renumbered[2]["seq"] = 3
    problem = _verify(renumbered).problem
    assert problem is not None
    assert (problem.kind, problem.seq, problem.event_id) == ("reordered", 3, slipped["id"])


def test_a_head_that_does_not_match_the_last_event_is_reported() -> None:
    events = _chain(3)
    problem = _verify(events, (3, "f" * 64)).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("edited", 3)
