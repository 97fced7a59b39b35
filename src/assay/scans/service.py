"""Scans: starting one as a job, reading its progress, attempts and findings, its
reports, cancelling it, and what happens when its job ends.

A scan's state and progress are its job's (the jobs package runs it, with the same
leases, checkpoints and takeover as any job); its attempts and findings are its own.
Answers are sealed at rest and opened only for a reader with `scans:read`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.crypto import Keyring
from assay.core.errors import NotFound
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import OrganisationScope, scoped
from assay.events import service as events
from assay.jobs.models import Job
from assay.jobs.service import JobService
from assay.predictions.service import PredictService
from assay.redteam.probes import ProbeSet
from assay.registry.schemas import VersionRef
from assay.scans.attempts import ScanContext, ScanProcessor
from assay.scans.errors import DetectorsMissing, ScanNotFound
from assay.scans.judge import DEFAULT_RUBRIC
from assay.scans.models import Scan, ScanAttempt
from assay.scans.planning import available_probe_sets, new_token, plan, probe_index
from assay.scans.reading import ScanReading
from assay.scans.reports.findings import findings_of
from assay.scans.reports.model import (
    FindingReport,
)
from assay.scans.schemas import SCAN_KIND, ScanCreate, ScanJobParams
from assay.settings import Settings
from assay.targets.service import TargetRegistry

log = get_logger("assay.scans")

SCAN_COMPLETED = "scan.completed"
events.register_event_type(
    SCAN_COMPLETED,
    "A red-team scan ended (succeeded, failed or cancelled): data has the scan and job ids, "
    "the target, attempts and hits, and the findings per taxonomy entry.",
)


class ScanService(ScanReading):
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        jobs: JobService,
        targets: TargetRegistry,
        predictions: PredictService,
        keyring: Keyring,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.jobs = jobs
        self.targets = targets
        self.predictions = predictions
        self.keyring = keyring
        self._probe_sets: dict[str, ProbeSet] | None = None

    def probe_sets(self) -> dict[str, ProbeSet]:
        if self._probe_sets is None:
            self._probe_sets = available_probe_sets(self.settings.redteam_probe_directories)
        return self._probe_sets

    # --- starting -----------------------------------------------------------------------

    async def start(
        self, db: AsyncSession, principal: OrgPrincipal, body: ScanCreate, *, meta: RequestMeta
    ) -> tuple[Scan, Job]:
        """Check the target, the probe sets and the detectors, then record the scan and its
        job (sent once the transaction commits)."""
        row = await self.targets.get(db, principal, body.target)
        judge = (
            await self.targets.get(db, principal, body.judge.target)
            if body.judge is not None
            else None
        )
        planned = plan(
            self.probe_sets(),
            body.probe_sets,
            body.transforms,
            include_plain=body.include_plain,
            max_attempts=self.settings.redteam_max_attempts,
        )
        await self._check_detectors(principal, planned.detectors, body.detector_alias)
        scan_id = uuid.uuid4()
        job = await self.jobs.submit_kind(
            db,
            principal,
            self.jobs.kinds[SCAN_KIND],
            ScanJobParams(scan_id=str(scan_id)),
            planned.rows,
        )
        counts = Counter(r["set"] for r in planned.rows)
        scan = Scan(
            id=scan_id,
            org_id=principal.org_id,
            job_id=job.id,
            target_id=row.id,
            target_name=row.name,
            target_kind=row.kind,
            target_url=row.url,
            probe_sets=[
                {"name": s.name, "version": s.version, "attempts": counts[s.name]}
                for s in planned.sets
            ],
            transforms=list(body.transforms),
            detector_alias=body.detector_alias,
            judge_target_id=judge.id if judge is not None else None,
            judge_target_name=judge.name if judge is not None else None,
            judge_rubric=body.judge.rubric if body.judge is not None else None,
            max_requests=body.max_requests or len(planned.rows),
            max_tokens=body.max_tokens,
            concurrency=min(body.concurrency or row.concurrency, row.concurrency),
            requests_used=0,
            tokens_used=0,
            marker=new_token("ASSAY-MK-"),
            canary=new_token("ASSAY-CN-"),
            created_by=principal.actor_id,
        )
        db.add(scan)
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.SCAN_STARTED,
            actor=principal,
            target_kind="scan",
            target_id=scan.id,
            details={"target": row.name, "attempts": len(planned.rows)},
        )
        return scan, job

    async def _check_detectors(
        self, principal: OrgPrincipal, names: Sequence[str], alias: str
    ) -> None:
        missing = []
        for name in names:
            try:
                await self.predictions.resolve(principal, name, VersionRef.parse(alias, None))
            except NotFound:
                missing.append(name)
        if missing:
            raise DetectorsMissing(
                f"The probes need detector models this organisation does not have under the "
                f"alias {alias!r}: {', '.join(missing)}. Import the red-team pack: "
                "assay models import examples/redteam --org <slug>.",
                errors=[
                    {"field": "detectors", "code": "missing_detector", "message": name}
                    for name in missing
                ],
            )

    # --- running (the job kind's side) --------------------------------------------------

    async def processor(self, principal: OrgPrincipal, scan_id: uuid.UUID) -> ScanProcessor:
        async with self.sessionmaker() as db:
            scan = await db.scalar(scoped(principal, Scan).where(Scan.id == scan_id))
            if scan is None:
                raise ScanNotFound(f"No scan {scan_id}.")
            row = await self.targets.get_by_id(db, principal, scan.target_id)
            judge = (
                await self.targets.get_by_id(db, principal, scan.judge_target_id)
                if scan.judge_target_id is not None
                else None
            )
        available = self.probe_sets()
        sets = [available[s["name"]] for s in scan.probe_sets if s["name"] in available]
        probes = probe_index(sets)
        names = sorted({name for _, probe in probes.values() for name in probe.detectors})
        ref = VersionRef.parse(scan.detector_alias, None)
        detectors = {name: await self.predictions.load(principal, name, ref) for name in names}
        target = self.targets.ready(row) if row is not None else None
        per_attempt = (
            target.timeout_seconds * (1 + target.max_retries) + 5.0 if target is not None else 1.0
        )
        context = ScanContext(
            principal=principal,
            scan_id=scan.id,
            marker=scan.marker,
            canary=scan.canary,
            concurrency=scan.concurrency,
            target=target,
            probes=probes,
            detectors=detectors,
            judge=self.targets.ready(judge) if judge is not None else None,
            judge_name=scan.judge_target_name,
            judge_rubric=scan.judge_rubric or DEFAULT_RUBRIC,
            # Within the chunk's lease, so a slow target cannot make the lease lapse.
            deadline_seconds=min(per_attempt, self.settings.jobs_lease_seconds * 0.8),
        )
        return ScanProcessor(
            context, self.sessionmaker, self.keyring, self.targets.client, self.predictions
        )

    async def ended(self, db: AsyncSession, job: Job) -> None:
        """The scan's job ended: write its findings summary and publish scan.completed."""
        scope = OrganisationScope(job.org_id)
        scan = await db.scalar(scoped(scope, Scan).where(Scan.job_id == job.id))
        if scan is None:
            return
        attempts = (
            await db.scalars(scoped(scope, ScanAttempt).where(ScanAttempt.scan_id == scan.id))
        ).all()
        findings = findings_of(tuple(self._attempt_report(a, None) for a in attempts))
        summary = {
            "attempts": len(attempts),
            "answered": sum(1 for a in attempts if a.status == "answered"),
            "hits": sum(1 for a in attempts if a.hit),
            "findings": [_finding_summary(f) for f in findings],
        }
        scan.summary = summary
        await events.publish(
            db,
            org_id=job.org_id,
            type=SCAN_COMPLETED,
            data={
                "scan_id": str(scan.id),
                "job_id": str(job.id),
                "state": str(job.state),
                "target": scan.target_name,
                **summary,
            },
        )

    async def cancel(
        self, db: AsyncSession, principal: OrgPrincipal, scan: Scan, *, meta: RequestMeta
    ) -> Job:
        job = await self.jobs.cancel(db, principal, scan.job_id)
        record_event(
            db,
            meta,
            action=SecurityAction.SCAN_CANCELLED,
            actor=principal,
            target_kind="scan",
            target_id=scan.id,
        )
        return job


def _finding_summary(finding: FindingReport) -> dict[str, object]:
    return {
        "taxonomy": finding.taxonomy.label,
        "name": finding.taxonomy.name,
        "attempts": finding.attempts,
        "hits": finding.hits,
        "success_rate": finding.success_rate,
        "severity": finding.severity,
    }
