"""Reading scans back: the scan, its progress per probe set, its attempts with their
answers opened, and the whole scan as a report (findings included)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import case, func
from sqlalchemy.ext.asyncio import AsyncSession

from assay import __version__
from assay.core.crypto import DecryptionError, Keyring
from assay.core.cursors import newest_first, page_of
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scoped
from assay.jobs.models import Job
from assay.jobs.service import JobService
from assay.redteam.taxonomy import TaxonomyRef as ProbeTag
from assay.redteam.taxonomy import owasp_2023
from assay.scans.errors import ScanNotFound
from assay.scans.models import Scan, ScanAttempt, answer_aad
from assay.scans.reports.findings import findings_of
from assay.scans.reports.model import (
    AttemptReport,
    DetectorResult,
    FindingReport,
    ScanReport,
    TaxonomyRef,
)

log = get_logger("assay.scans")


def taxonomy_ref(entry: dict[str, str]) -> TaxonomyRef:
    """A stored tag as reports show it, with its name and its OWASP 2023 equivalent."""
    try:
        tag = ProbeTag.model_validate(entry)
    except ValidationError:
        # A tag a later release no longer knows still reads, by its id.
        ident = str(entry.get("id", ""))
        return TaxonomyRef(
            str(entry.get("framework", "")),
            str(entry.get("version", "")),
            ident,
            ident,
            ident,
            None,
        )
    return TaxonomyRef(tag.framework, tag.version, tag.id, tag.name, tag.label, owasp_2023(tag))


class ScanReading:
    """The reading half of `ScanService` (which provides these attributes)."""

    jobs: JobService
    keyring: Keyring

    async def get(self, db: AsyncSession, principal: OrgPrincipal, scan_id: uuid.UUID) -> Scan:
        scan = await db.scalar(scoped(principal, Scan).where(Scan.id == scan_id))
        if scan is None:
            raise ScanNotFound(f"No scan {scan_id} in this organisation.")
        return scan

    async def job_of(self, db: AsyncSession, principal: OrgPrincipal, scan: Scan) -> Job:
        return await self.jobs.get(db, principal, scan.job_id)

    async def list_scans(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        *,
        target: str | None,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Scan], str | None]:
        statement = scoped(principal, Scan)
        if target is not None:
            statement = statement.where(Scan.target_name == target)
        if since is not None:
            statement = statement.where(Scan.created_at >= since)
        if until is not None:
            statement = statement.where(Scan.created_at < until)
        rows = (await db.scalars(newest_first(statement, Scan, cursor, limit))).all()
        return page_of(rows, limit)

    async def progress(
        self, db: AsyncSession, principal: OrgPrincipal, scan: Scan
    ) -> dict[str, tuple[int, int]]:
        """(attempts recorded, hits) per probe set."""
        statement = (
            scoped(principal, ScanAttempt)
            .where(ScanAttempt.scan_id == scan.id)
            .with_only_columns(
                ScanAttempt.probe_set,
                func.count(),
                func.sum(case((ScanAttempt.hit.is_(True), 1), else_=0)),
            )
            .group_by(ScanAttempt.probe_set)
        )
        return {
            name: (int(count), int(hits or 0))
            for name, count, hits in (await db.execute(statement))
        }

    async def attempts(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        scan: Scan,
        *,
        after: int,
        limit: int,
        hits_only: bool,
    ) -> tuple[list[ScanAttempt], int | None]:
        statement = (
            scoped(principal, ScanAttempt)
            .where(ScanAttempt.scan_id == scan.id, ScanAttempt.number > after)
            .order_by(ScanAttempt.number)
            .limit(limit + 1)
        )
        if hits_only:
            statement = statement.where(ScanAttempt.hit.is_(True))
        rows = list((await db.scalars(statement)).all())
        if len(rows) > limit:
            rows = rows[:limit]
            return rows, rows[-1].number
        return rows, None

    def answer_of(self, attempt: ScanAttempt) -> str | None:
        if attempt.answer_encrypted is None:
            return None
        try:
            return self.keyring.decrypt(
                attempt.answer_encrypted,
                answer_aad(attempt.org_id, attempt.scan_id, attempt.number),
            ).decode()
        except DecryptionError:
            log.warning("scan_answer_unreadable", scan=str(attempt.scan_id), number=attempt.number)
            return None

    def _attempt_report(self, attempt: ScanAttempt, answer: str | None) -> AttemptReport:
        return AttemptReport(
            index=attempt.number,
            probe_set=attempt.probe_set,
            probe_set_version=attempt.probe_set_version,
            probe_id=attempt.probe_id,
            goal=attempt.goal,
            taxonomy=tuple(taxonomy_ref(entry) for entry in attempt.taxonomy),
            transforms=tuple(attempt.transforms),
            prompt=attempt.prompt,
            answer=answer,
            status=attempt.status,  # type: ignore[arg-type]  # written from the literal set
            error=attempt.error,
            latency_ms=attempt.latency_ms,
            detectors=tuple(
                DetectorResult(str(d["detector"]), float(d["score"]), str(d["rationale"]))
                for d in attempt.detectors
            ),
            hit=attempt.hit,
            severity=attempt.severity,  # type: ignore[arg-type]  # from the probe's literal
            created_at=attempt.created_at,
        )

    async def report(self, db: AsyncSession, principal: OrgPrincipal, scan: Scan) -> ScanReport:
        """The whole scan with its answers opened (a read of sensitive data)."""
        job = await self.job_of(db, principal, scan)
        rows = (
            await db.scalars(
                scoped(principal, ScanAttempt)
                .where(ScanAttempt.scan_id == scan.id)
                .order_by(ScanAttempt.number)
            )
        ).all()
        attempts = tuple(self._attempt_report(a, self.answer_of(a)) for a in rows)
        return ScanReport(
            scan_id=str(scan.id),
            target_name=scan.target_name,
            target_kind=scan.target_kind,
            target_url=scan.target_url,
            state=str(job.state),
            created_at=scan.created_at,
            finished_at=job.finished_at,
            probe_sets=tuple((str(s["name"]), int(s["version"])) for s in scan.probe_sets),
            transforms=tuple(scan.transforms),
            attempts=attempts,
            findings=findings_of(attempts),
            requests_used=scan.requests_used,
            tokens_used=scan.tokens_used,
            assay_version=__version__,
        )

    async def findings(
        self, db: AsyncSession, principal: OrgPrincipal, scan: Scan
    ) -> tuple[FindingReport, ...]:
        return (await self.report(db, principal, scan)).findings
