"""Errors of jobs. They keep their parents' problem types (conflict, rate-limited)."""

from __future__ import annotations

from assay.core.errors import Conflict, NotFound, RateLimited


class JobNotFound(NotFound):
    """No such job in this organisation (another organisation's jobs are not found)."""


class JobNotFinished(Conflict):
    """The job has no result yet: it is still queued or running."""


class TooManyJobs(RateLimited):
    """The organisation already has as many queued or running jobs as it may."""


class TransientJobError(Exception):
    """A failure worth another attempt (a dependency did not answer); not shown to clients."""
