"""Working through a scan's attempts: send each prompt, let the detectors judge the
answer, record the attempt at once.

Resuming is what this module is built around: an attempt's row is committed as soon as
its answer is judged, before the chunk's checkpoint, and a chunk that is taken over or
restarted first reads which of its attempts have rows and sends only the others. The only
prompt that can be sent twice is one whose answer arrived in the instant before the worker
died and whose row was not committed yet.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.core.crypto import Keyring
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scope_statement, scoped
from assay.engine.results import PredictionResult
from assay.jobs.service import ChunkOutcome, InputRow
from assay.predictions.service import PredictService, Served
from assay.redteam.detection import HIT_THRESHOLD, detector_record, rationale
from assay.redteam.probes import Probe, ProbeSet
from assay.redteam.transforms import apply_transforms
from assay.scans.judge import judge_prompt, read_verdict
from assay.scans.models import Scan, ScanAttempt, answer_aad
from assay.scans.planning import planted_system_prompt
from assay.targets.service import ReadyTarget, TargetClient

log = get_logger("assay.scans")


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What every attempt of one chunk shares (read once per chunk)."""

    principal: OrgPrincipal
    scan_id: uuid.UUID
    marker: str
    canary: str
    concurrency: int
    target: ReadyTarget | None
    probes: Mapping[tuple[str, str], tuple[ProbeSet, Probe]]
    detectors: Mapping[str, Served]
    # The LLM-as-judge detector, when the scan has one (None: its target was removed).
    judge: ReadyTarget | None
    judge_name: str | None
    judge_rubric: str
    deadline_seconds: float


def result_line(attempt: ScanAttempt) -> str:
    body = {
        "number": attempt.number,
        "probe_set": attempt.probe_set,
        "probe_id": attempt.probe_id,
        "transforms": attempt.transforms,
        "status": attempt.status,
        "hit": attempt.hit,
        "detectors": {d["detector"]: d["score"] for d in attempt.detectors},
        "error": attempt.error,
    }
    return json.dumps(body, separators=(",", ":"))


class ScanProcessor:
    def __init__(
        self,
        context: ScanContext,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        client: TargetClient,
        predictions: PredictService,
    ) -> None:
        self._context = context
        self._sessionmaker = sessionmaker
        self._keyring = keyring
        self._client = client
        self._predictions = predictions
        # Checkpoint every few attempts: each checkpoint renews the lease and is where a
        # cancellation is seen, and an attempt may take a target's full timeout.
        self.checkpoint_rows: int | None = max(2, context.concurrency * 2)

    async def process(self, rows: Sequence[InputRow]) -> ChunkOutcome:
        context = self._context
        numbers = [row.index for row in rows]
        async with self._sessionmaker() as db:
            done = {
                attempt.number: attempt
                for attempt in (
                    await db.scalars(
                        scoped(context.principal, ScanAttempt).where(
                            ScanAttempt.scan_id == context.scan_id,
                            ScanAttempt.number.in_(numbers),
                        )
                    )
                ).all()
            }
        gate = asyncio.Semaphore(context.concurrency)
        attempts = await asyncio.gather(
            *(self._one(row, done.get(row.index), gate) for row in rows)
        )
        lines = [result_line(attempt) for attempt in attempts]
        errors = sum(1 for attempt in attempts if attempt.status == "error")
        return ChunkOutcome(lines, errors)

    async def _one(
        self, row: InputRow, done: ScanAttempt | None, gate: asyncio.Semaphore
    ) -> ScanAttempt:
        if done is not None:
            return done  # answered before an interruption: never sent again
        context = self._context
        record = row.record if isinstance(row.record, dict) else {}
        found = context.probes.get((str(record.get("set")), str(record.get("probe"))))
        transforms = [str(name) for name in record.get("transforms", []) if isinstance(name, str)]
        if found is None:
            # The probe set changed since the scan was planned: say so on the attempt.
            return await self._write(
                self._attempt(row.index, record, None, transforms, "", "error"),
                error="the probe is no longer in its probe set",
            )
        probe_set, probe = found
        values = {"marker": context.marker, "canary": context.canary}
        prompt = apply_transforms(probe.prompt, transforms, values)
        attempt = self._attempt(row.index, record, (probe_set, probe), transforms, prompt, "error")
        if context.target is None:
            return await self._write(attempt, error="the target was removed")
        # The gate is held until the attempt is recorded: the token budget is checked
        # before each request, so it must see the usage of the attempts before it.
        async with gate:
            return await self._send_and_judge(attempt, probe, prompt, transforms, row.index)

    async def _send_and_judge(
        self,
        attempt: ScanAttempt,
        probe: Probe,
        prompt: str,
        transforms: list[str],
        number: int,
    ) -> ScanAttempt:
        context = self._context
        target = context.target
        assert target is not None  # noqa: S101 - checked by the caller
        if not await self._spend_request():
            attempt.status = "skipped"
            return await self._write(attempt, error="the scan's budget is spent")
        system = (
            planted_system_prompt(target.system_prompt, context.canary)
            if target.kind == "openai_chat"
            else None
        )
        answer = await self._client.send(
            target, prompt, system=system, deadline=time.monotonic() + context.deadline_seconds
        )
        attempt.latency_ms = answer.latency_ms
        attempt.tokens = answer.tokens
        if answer.status != "answered" or answer.text is None:
            return await self._write(attempt, error=answer.detail or "no answer")
        attempt.status = "answered"
        attempt.answer_encrypted = self._keyring.encrypt(
            answer.text.encode(), answer_aad(context.principal.org_id, context.scan_id, number)
        )
        attempt.detectors = await self._judge(probe, prompt, answer.text, transforms)
        if context.judge_name is not None:
            attempt.detectors.append(await self._ask_judge(probe, prompt, answer.text))
        attempt.hit = any(d["score"] >= HIT_THRESHOLD for d in attempt.detectors)
        return await self._write(attempt, error=None)

    def _attempt(
        self,
        number: int,
        record: Mapping[str, Any],
        found: tuple[ProbeSet, Probe] | None,
        transforms: list[str],
        prompt: str,
        status: str,
    ) -> ScanAttempt:
        context = self._context
        probe = found[1] if found is not None else None
        return ScanAttempt(
            id=uuid.uuid4(),
            org_id=context.principal.org_id,
            scan_id=context.scan_id,
            number=number,
            probe_set=str(record.get("set", ""))[:64],
            probe_set_version=int(record.get("version", 0) or 0),
            probe_id=str(record.get("probe", ""))[:64],
            goal=(probe.goal if probe is not None else "")[:500],
            severity=str(probe.severity) if probe is not None else "low",
            taxonomy=[
                {"framework": ref.framework, "version": ref.version, "id": ref.id}
                for ref in (probe.taxonomy if probe is not None else [])
            ],
            transforms=transforms,
            prompt=prompt,
            status=status,
            detectors=[],
            hit=False,
        )

    async def _judge(
        self, probe: Probe, prompt: str, answer: str, transforms: list[str]
    ) -> list[dict[str, Any]]:
        context = self._context
        record = detector_record(
            prompt=prompt,
            answer=answer,
            canary=context.canary,
            marker=context.marker,
            probe_goal=probe.goal,
            transforms=transforms,
        )
        outcomes: list[dict[str, Any]] = []
        for name in probe.detectors:
            served = context.detectors[name]
            results, _ = await self._predictions.score_unrecorded(
                context.principal,
                served,
                [record],
                explain=True,
                request_id=f"scan:{context.scan_id}",
            )
            result = results[0] if results else None
            if isinstance(result, PredictionResult):
                score = round(min(1.0, max(0.0, result.score)), 4)
                said = rationale(result)
            else:
                score, said = 0.0, "the detector could not read the attempt"
            outcomes.append({"detector": name, "score": score, "rationale": said[:500]})
        return outcomes

    async def _ask_judge(self, probe: Probe, prompt: str, answer: str) -> dict[str, Any]:
        """The judge target's grade of the answer, as one more detector result. Its
        requests are its own target's (rate limit, breaker), not the scan's budget."""
        context = self._context
        name = f"llm-judge/{context.judge_name}"
        judge = context.judge
        if judge is None:
            return {"detector": name, "score": 0.0, "rationale": "the judge target was removed"}
        question = judge_prompt(probe.goal, prompt, answer)
        chat = judge.kind == "openai_chat"
        graded = await self._client.send(
            judge,
            question if chat else f"{context.judge_rubric}\n\n{question}",
            system=context.judge_rubric if chat else None,
            deadline=time.monotonic() + context.deadline_seconds,
        )
        if graded.status != "answered" or graded.text is None:
            said = f"the judge did not answer: {graded.detail or 'no answer'}"
            return {"detector": name, "score": 0.0, "rationale": said[:500]}
        verdict = read_verdict(graded.text)
        if verdict is None:
            return {"detector": name, "score": 0.0, "rationale": "the judge gave no verdict"}
        return {"detector": name, "score": round(verdict[0], 4), "rationale": verdict[1]}

    async def _spend_request(self) -> bool:
        """Take one request from the scan's budget (shared by every worker on the scan);
        False when requests or tokens are spent."""
        context = self._context
        async with self._sessionmaker() as db, db.begin():
            spent = await db.execute(
                scope_statement(
                    context.principal,
                    update(Scan)
                    .where(
                        Scan.id == context.scan_id,
                        Scan.requests_used < Scan.max_requests,
                        (Scan.max_tokens.is_(None)) | (Scan.tokens_used < Scan.max_tokens),
                    )
                    .values(requests_used=Scan.requests_used + 1),
                    Scan,
                )
            )
        return bool(spent.rowcount == 1)  # type: ignore[attr-defined]

    async def _write(self, attempt: ScanAttempt, *, error: str | None) -> ScanAttempt:
        attempt.error = error[:300] if error else None
        context = self._context
        try:
            async with self._sessionmaker() as db, db.begin():
                db.add(attempt)
                if attempt.tokens:
                    await db.execute(
                        scope_statement(
                            context.principal,
                            update(Scan)
                            .where(Scan.id == context.scan_id)
                            .values(tokens_used=Scan.tokens_used + attempt.tokens),
                            Scan,
                        )
                    )
        except IntegrityError:
            # Another worker (a takeover race) recorded this attempt first: theirs stands.
            async with self._sessionmaker() as db:
                existing = await db.scalar(
                    scoped(context.principal, ScanAttempt).where(
                        ScanAttempt.scan_id == context.scan_id,
                        ScanAttempt.number == attempt.number,
                    )
                )
            if existing is not None:
                return existing
            raise
        return attempt
