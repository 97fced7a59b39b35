"""/v1/scans: start a red-team scan of a target, follow it, read its attempts, findings
and reports, cancel it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.deps import AuditedReads, ReadAudit
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta
from assay.core.db import DbSession
from assay.core.paging import Cursor, PageLimit, Since, Until
from assay.core.principal import OrgPrincipal
from assay.http.rate_limit import RateLimitManagement
from assay.scans.deps import CanReadScans, CanRunScans, Scans
from assay.scans.models import Scan
from assay.scans.reading import taxonomy_ref
from assay.scans.reports.garak import render_garak_jsonl
from assay.scans.reports.html import render_html
from assay.scans.reports.json_report import render_json
from assay.scans.reports.junit import render_junit
from assay.scans.reports.sarif import render_sarif
from assay.scans.schemas import (
    AttemptPage,
    AttemptView,
    Budget,
    DetectorOutcome,
    FindingSummary,
    FindingView,
    ProbeSetProgress,
    ProbeSetView,
    ReportFormat,
    ScanCreate,
    ScanPage,
    ScanView,
    TargetRef,
)
from assay.scans.service import ScanService

router = APIRouter(prefix="/v1/scans", tags=["scans"])

_REPORTS = {
    "json": (render_json, "application/json", "json"),
    "sarif": (render_sarif, "application/sarif+json", "sarif"),
    "junit": (render_junit, "application/xml", "xml"),
    "html": (render_html, "text/html; charset=utf-8", "html"),
    "garak": (render_garak_jsonl, "application/x-ndjson", "jsonl"),
}


async def _view(
    db: AsyncSession, principal: OrgPrincipal, scans: ScanService, scan: Scan
) -> ScanView:
    job = await scans.job_of(db, principal, scan)
    progress = await scans.progress(db, principal, scan)
    summary = scan.summary or {}
    return ScanView(
        id=scan.id,
        job_id=scan.job_id,
        state=str(job.state),
        cancel_requested=job.cancel_requested,
        target=TargetRef(name=scan.target_name, kind=scan.target_kind, url=scan.target_url),
        probe_sets=[
            ProbeSetProgress(
                name=str(s["name"]),
                version=int(s["version"]),
                planned=int(s["attempts"]),
                done=progress.get(str(s["name"]), (0, 0))[0],
                hits=progress.get(str(s["name"]), (0, 0))[1],
            )
            for s in scan.probe_sets
        ],
        transforms=scan.transforms,
        concurrency=scan.concurrency,
        judge=scan.judge_target_name,
        budget=Budget(
            max_requests=scan.max_requests,
            max_tokens=scan.max_tokens,
            requests_used=scan.requests_used,
            tokens_used=scan.tokens_used,
        ),
        done=job.done,
        total=job.total,
        hits=sum(hits for _, hits in progress.values()),
        findings=(
            [FindingSummary.model_validate(f) for f in summary.get("findings", [])]
            if scan.summary is not None
            else None
        ),
        created_at=scan.created_at,
        finished_at=job.finished_at,
        events_url=f"/v1/jobs/{scan.job_id}/events",
    )


def _read(
    reads: ReadAudit, request: Request, principal: OrgPrincipal, scan: Scan, what: str
) -> None:
    """Answers are what a scan drew out of a target (its secrets, perhaps): every read of
    them is an audit event."""
    reads.note(
        RequestMeta.of(request),
        principal,
        SecurityAction.SCAN_RESULTS_READ,
        target_kind="scan",
        target_id=scan.id,
        details={"what": what},
    )


@router.get("/probe-sets", summary="The probe sets a scan can send")
async def list_probe_sets(
    principal: CanReadScans, _limit: RateLimitManagement, scans: Scans
) -> list[ProbeSetView]:
    return [
        ProbeSetView(
            name=s.name,
            version=s.version,
            description=s.description,
            probes=len(s.probes),
            taxonomy=sorted(
                {
                    taxonomy_ref(ref.model_dump()).label
                    for probe in s.probes
                    for ref in probe.taxonomy
                }
            ),
        )
        for s in sorted(scans.probe_sets().values(), key=lambda s: s.name)
    ]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a scan of a target (it runs as a job)",
    responses={
        404: {"description": "No such target (target-not-found)"},
        409: {"description": "A probe's detector model is missing (detectors-missing)"},
        422: {"description": "Unknown probe sets or transforms, too many attempts (scan-invalid)"},
        429: {"description": "The organisation runs as many jobs as it may (rate-limited)"},
    },
)
async def start_scan(
    body: ScanCreate,
    request: Request,
    response: Response,
    principal: CanRunScans,
    _limit: RateLimitManagement,
    db: DbSession,
    scans: Scans,
) -> ScanView:
    scan, _ = await scans.start(db, principal, body, meta=RequestMeta.of(request))
    response.headers["Location"] = f"/v1/scans/{scan.id}"
    return await _view(db, principal, scans, scan)


@router.get("", summary="The organisation's scans, newest first")
async def list_scans(
    principal: CanReadScans,
    _limit: RateLimitManagement,
    db: DbSession,
    scans: Scans,
    target: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_-]{0,39}$", max_length=40)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> ScanPage:
    rows, next_cursor = await scans.list_scans(
        db, principal, target=target, since=since, until=until, cursor=cursor, limit=limit
    )
    return ScanPage(
        items=[await _view(db, principal, scans, row) for row in rows], next_cursor=next_cursor
    )


@router.get("/{scan_id}", summary="One scan: its state, progress per probe set, budget")
async def get_scan(
    scan_id: uuid.UUID,
    principal: CanReadScans,
    _limit: RateLimitManagement,
    db: DbSession,
    scans: Scans,
) -> ScanView:
    return await _view(db, principal, scans, await scans.get(db, principal, scan_id))


@router.post("/{scan_id}/cancel", summary="Cancel a scan (it stops at its next checkpoint)")
async def cancel_scan(
    scan_id: uuid.UUID,
    request: Request,
    principal: CanRunScans,
    _limit: RateLimitManagement,
    db: DbSession,
    scans: Scans,
) -> ScanView:
    scan = await scans.get(db, principal, scan_id)
    await scans.cancel(db, principal, scan, meta=RequestMeta.of(request))
    return await _view(db, principal, scans, scan)


@router.get("/{scan_id}/attempts", summary="The scan's attempts with their answers, in order")
async def list_attempts(
    scan_id: uuid.UUID,
    request: Request,
    reads: AuditedReads,
    principal: CanReadScans,
    _limit: RateLimitManagement,
    db: DbSession,
    scans: Scans,
    after: Annotated[
        int, Query(ge=-1, le=10_000_000, description="Attempts after this number.")
    ] = -1,
    hits_only: Annotated[bool, Query(description="Only attempts that worked.")] = False,
    limit: PageLimit = 100,
) -> AttemptPage:
    scan = await scans.get(db, principal, scan_id)
    rows, next_after = await scans.attempts(
        db, principal, scan, after=after, limit=limit, hits_only=hits_only
    )
    _read(reads, request, principal, scan, "attempts")
    return AttemptPage(
        items=[
            AttemptView(
                number=a.number,
                probe_set=a.probe_set,
                probe_set_version=a.probe_set_version,
                probe_id=a.probe_id,
                goal=a.goal,
                severity=a.severity,
                taxonomy=[taxonomy_ref(entry).label for entry in a.taxonomy],
                transforms=a.transforms,
                prompt=a.prompt,
                answer=scans.answer_of(a),
                status=a.status,
                error=a.error,
                latency_ms=a.latency_ms,
                tokens=a.tokens,
                detectors=[DetectorOutcome.model_validate(d) for d in a.detectors],
                hit=a.hit,
                created_at=a.created_at,
            )
            for a in rows
        ],
        next_after=next_after,
    )


@router.get("/{scan_id}/findings", summary="Findings per taxonomy entry, with evidence")
async def list_findings(
    scan_id: uuid.UUID,
    request: Request,
    reads: AuditedReads,
    principal: CanReadScans,
    _limit: RateLimitManagement,
    db: DbSession,
    scans: Scans,
) -> list[FindingView]:
    scan = await scans.get(db, principal, scan_id)
    _read(reads, request, principal, scan, "findings")
    return [
        FindingView(
            taxonomy=f.taxonomy.label,
            framework=f.taxonomy.framework,
            version=f.taxonomy.version,
            id=f.taxonomy.id,
            name=f.taxonomy.name,
            owasp_2023=f.taxonomy.owasp_2023,
            attempts=f.attempts,
            hits=f.hits,
            success_rate=f.success_rate,
            severity=f.severity,
            probes=list(f.probes),
            evidence=list(f.evidence),
        )
        for f in await scans.findings(db, principal, scan)
    ]


_REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report in the format asked for",
        "content": {content: {} for _, content, _ in _REPORTS.values()},
    }
}


@router.get(
    "/{scan_id}/report",
    summary="The scan's report: JSON, SARIF 2.1.0, JUnit XML, HTML or garak JSONL",
    response_class=Response,
    responses=_REPORT_RESPONSES,
)
async def get_report(
    scan_id: uuid.UUID,
    request: Request,
    reads: AuditedReads,
    principal: CanReadScans,
    _limit: RateLimitManagement,
    db: DbSession,
    scans: Scans,
    format: Annotated[ReportFormat, Query(description="Which format.")] = "json",
) -> Response:
    scan = await scans.get(db, principal, scan_id)
    render, content_type, extension = _REPORTS[format]
    _read(reads, request, principal, scan, f"report ({format})")
    body = render(await scans.report(db, principal, scan))
    return Response(
        content=body,
        media_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="scan-{scan.id}.{extension}"'},
    )
