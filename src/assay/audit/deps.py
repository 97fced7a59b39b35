"""Dependencies other packages' routes use to audit what they read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.audit.reads import ReadAudit

__all__ = ["AuditedReads", "ReadAudit"]


def _reads(request: Request) -> ReadAudit:
    reads: ReadAudit = request.app.state.audit_reads
    return reads


AuditedReads = Annotated[ReadAudit, Depends(_reads)]
