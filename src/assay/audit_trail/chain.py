"""The audit chain's arithmetic: canonical forms, hashes and the verifier.

Pure: no database, no web. The same code checks a chain read from the database and one
read from an exported JSON Lines file, so an export verifies exactly as the live log does.

An event's hash is SHA-256 over the canonical JSON (keys sorted, no spaces, UTF-8) of its
recorded fields and the previous event's hash. Its sequence number is not hashed: the
order is what the `prev_hash` links say, and the number of links from the start is the
sequence number, which a signed checkpoint (sequence number + hash) pins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

GENESIS_HASH = "0" * 64
PLATFORM_CHAIN = "platform"
# The fields of an event that its hash covers, in the export's spelling.
HASHED_FIELDS = (
    "id",
    "org_id",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "action",
    "target_kind",
    "target_id",
    "outcome",
    "client_address",
    "user_agent",
    "request_id",
    "details",
    "prev_hash",
)
CHECKPOINT_PURPOSE = "assay audit checkpoint v1"

# (key id, signed bytes, signature) -> None when the signature is good, else why not.
SignatureCheck = Callable[[str, bytes, str], str | None]
ProblemKind = Literal["edited", "deleted", "inserted", "reordered", "truncated", "checkpoint"]


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The one byte form hashed and signed: sorted keys, no whitespace, UTF-8."""
    # NaN and infinities are written as Python writes them (the JSON column took them so):
    # refusing them here would stop the chain at such an event for good.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def timestamp(value: datetime) -> str:
    """A UTC time as the chain spells it (microseconds, explicit offset)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(event: Mapping[str, Any]) -> str:
    """The hash an event must carry, from its recorded fields and its `prev_hash`."""
    return hashlib.sha256(
        canonical_json({name: event.get(name) for name in HASHED_FIELDS})
    ).hexdigest()


def checkpoint_message(checkpoint: Mapping[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return canonical_json(
        {
            "purpose": CHECKPOINT_PURPOSE,
            "chain": checkpoint["chain"],
            "seq": checkpoint["seq"],
            "hash": checkpoint["hash"],
            "signed_at": checkpoint["signed_at"],
            "key_id": checkpoint["key_id"],
        }
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong with a chain: what, at which sequence number, which event."""

    kind: ProblemKind
    seq: int | None
    event_id: str | None
    message: str


@dataclass(slots=True)
class Report:
    """What verifying one chain found."""

    chain: str
    events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(slots=True)
class ChainVerifier:
    """Walks one chain's events in sequence order and stops at the first problem.

    Give it the chain's checkpoints first (`expect_checkpoints`), then each event
    (`add`), then `finish` with the head the store claims, if any.
    """

    chain: str
    report: Report = field(init=False)
    _checkpoints: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    _expected: int = 1
    _prev: str = GENESIS_HASH

    def __post_init__(self) -> None:
        self.report = Report(chain=self.chain)

    def _fail(self, kind: ProblemKind, seq: int | None, event_id: str | None, why: str) -> bool:
        if self.report.problem is None:
            self.report.problem = Problem(kind, seq, event_id, why)
        return False

    def expect_checkpoints(
        self, checkpoints: Sequence[Mapping[str, Any]], check_signature: SignatureCheck
    ) -> bool:
        """Check each checkpoint's signature and remember what it pins; False on a bad one."""
        for checkpoint in sorted(checkpoints, key=lambda c: int(c["seq"])):
            seq = int(checkpoint["seq"])
            if checkpoint.get("chain") != self.chain:
                return self._fail(
                    "checkpoint", seq, None, f"the checkpoint at {seq} belongs to another chain"
                )
            why = check_signature(
                str(checkpoint["key_id"]),
                checkpoint_message(checkpoint),
                str(checkpoint["signature"]),
            )
            if why is not None:
                return self._fail("checkpoint", seq, None, f"the checkpoint at {seq}: {why}")
            self._checkpoints[seq] = checkpoint
            self.report.checkpoints += 1
            self.report.last_checkpoint_seq = seq
        return True

    def add(self, event: Mapping[str, Any]) -> bool:
        """Check the next event; False once a problem is found (the rest is not looked at)."""
        if self.report.problem is not None:
            return False
        seq, event_id = int(event["seq"]), str(event["id"])
        found = self._out_of_place(seq) or self._broken(event, seq)
        if found is not None:
            kind, at, why = found
            return self._fail(kind, at, event_id, why)
        self._prev = str(event["hash"])
        self._expected += 1
        self.report.events += 1
        self.report.head_seq = seq
        self.report.head_hash = self._prev
        return True

    def _out_of_place(self, seq: int) -> tuple[ProblemKind, int, str] | None:
        if seq < self._expected:
            return "inserted", seq, f"a second event claims sequence number {seq}"
        if seq > self._expected:
            missing = (
                str(self._expected)
                if seq == self._expected + 1
                else f"{self._expected} to {seq - 1}"
            )
            return (
                "deleted",
                self._expected,
                f"event {missing} is missing (deleted); the next one present is {seq}",
            )
        return None

    def _broken(self, event: Mapping[str, Any], seq: int) -> tuple[ProblemKind, int, str] | None:
        if event_hash(event) != event.get("hash"):
            return "edited", seq, "its fields do not match its hash (edited)"
        if event.get("prev_hash") != self._prev:
            return (
                "reordered",
                seq,
                f"it does not follow event {seq - 1} (its prev_hash differs): events were "
                "inserted or reordered here",
            )
        pinned = self._checkpoints.get(seq)
        if pinned is not None and pinned["hash"] != event["hash"]:
            return (
                "edited",
                seq,
                f"the checkpoint signed at {seq} pins another hash: the chain up to here "
                "was rewritten",
            )
        return None

    def finish(self, claimed_head: tuple[int, str] | None = None) -> Report:
        """The report, after checking the tail against the head and the checkpoints."""
        if self.report.problem is not None:
            return self.report
        last = self._expected - 1
        if claimed_head is not None:
            head_seq, head_hash = claimed_head
            if head_seq > last:
                self._fail(
                    "truncated",
                    last + 1,
                    None,
                    f"the chain head says {head_seq} events, only {last} exist: the tail was cut",
                )
                return self.report
            if head_seq == last and head_hash != self._prev:
                self._fail(
                    "edited", last, None, "the chain head's hash differs from the last event's"
                )
                return self.report
        beyond = [seq for seq in self._checkpoints if seq > last]
        if beyond:
            self._fail(
                "truncated",
                last + 1,
                None,
                f"a signed checkpoint covers {max(beyond)} events, only {last} exist: the "
                "tail was cut",
            )
        return self.report
