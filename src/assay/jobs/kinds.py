"""Job kinds other packages add: what a kind checks at submission, how it works through
a checkpoint's rows, and how its result rows read as CSV.

`batch_score` is the jobs package's own kind. Another package (lookups, say) gives the
job service a `JobKind` when the application is composed; the runner then hands each
checkpoint's rows to the kind's `ChunkProcessor`, and writes what it returns (result
lines to the store, its rows to the database in the checkpoint's transaction) with the
same leases, checkpoints and exactly-once guarantee as batch scoring.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.principal import OrgPrincipal
from assay.jobs.models import Job
from assay.jobs.store import InputRow

# Writes a checkpoint's rows in the transaction that moves the checkpoint.
WriteRows = Callable[[AsyncSession], Awaitable[None]]


async def _nothing(_db: AsyncSession) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """A checkpoint's work: one JSON result line per input row, in order, and what to
    write with the checkpoint."""

    lines: list[str]
    errors: int
    write: WriteRows = field(default=_nothing)


class ChunkProcessor(Protocol):
    # Rows between two checkpoints; None takes the jobs_checkpoint_rows setting. A kind
    # whose rows are slow (each one a remote call) checkpoints more often, so that its
    # lease is renewed and a cancellation is seen soon.
    checkpoint_rows: int | None

    async def process(self, rows: Sequence[InputRow]) -> ChunkOutcome: ...


class JobKind(Protocol):
    """A kind of job; its `name` is what `POST /v1/jobs` takes as `kind`."""

    name: str
    # The submission's params (strict); `records` (inline rows) is handled by the jobs
    # service, like a file upload.
    params_model: type[BaseModel]
    # Result CSV: the header, and a row from one result line.
    csv_columns: tuple[str, ...]
    # Whether POST /v1/jobs takes this kind; False for a kind its own API starts (a scan).
    submitted_as_job: bool

    def csv_row(self, line: Mapping[str, Any]) -> list[Any]: ...

    async def check(self, principal: OrgPrincipal, params: BaseModel) -> None:
        """Refuse a submission this principal may not make or that cannot run (raise an
        AssayError); called before the input is stored."""

    async def prepare(self, principal: OrgPrincipal, params: Mapping[str, Any]) -> ChunkProcessor:
        """Ready to work through one chunk with the stored params (loads what it needs
        once per chunk)."""

    async def ended(self, db: AsyncSession, job: Job) -> None:
        """The job ended (succeeded, failed or cancelled), in the transaction that ended
        it: anything the kind writes or publishes then."""
