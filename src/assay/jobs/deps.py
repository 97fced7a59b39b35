"""Dependencies of the jobs routes: the application's `JobService`, and who may use it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.jobs.service import JobService


async def job_service(request: Request) -> JobService:
    service: JobService = request.app.state.jobs
    return service


Jobs = Annotated[JobService, Depends(job_service)]
CanReadJobs = Annotated[OrgPrincipal, Depends(require(Permission.JOBS_READ))]
CanWriteJobs = Annotated[OrgPrincipal, Depends(require(Permission.JOBS_WRITE))]
