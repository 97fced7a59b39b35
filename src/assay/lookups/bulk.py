"""Bulk lookups: a CSV or JSON-lines file of indicators as a job (`kind: lookup_bulk`).

Each row is one lookup, exactly as `POST /v1/lookups` makes it, a few at a time; a row
whose indicator cannot be looked up is an error row, never a failed job. The lookups
and their verdicts' prediction records are written with the checkpoint, so a worker
that dies mid-job leaves every row in the result, and in the history, exactly once.
Providers' quotas are shared with every other lookup: a provider whose quota is spent
is reported `rate_limited` on the rows it could not answer, never called past it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.errors import Forbidden
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.core.schemas import StrictRequest
from assay.jobs.models import Job
from assay.jobs.service import ChunkOutcome, InputRow
from assay.lookups.errors import IndicatorRejected
from assay.lookups.models import Lookup
from assay.lookups.schemas import ProviderName
from assay.lookups.service import LookupService
from assay.predictions.service import Served
from assay.providers.service import ConfiguredProvider

KIND = "lookup_bulk"
# Lookups of one checkpoint in flight at once: each asks every provider concurrently.
CONCURRENCY = 8


class LookupBulkParams(StrictRequest):
    providers: list[ProviderName] | None = Field(
        default=None, min_length=1, max_length=20, description="Ask only these providers."
    )
    force_refresh: bool = False
    column: str = Field(
        default="indicator",
        min_length=1,
        max_length=100,
        description="The CSV column (or JSON key) that holds the indicator.",
    )


def _line(row: int, **fields: Any) -> str:
    body = {
        "row": row,
        "status": "ok",
        "indicator": None,
        "type": None,
        "verdict": None,
        "score": None,
        "lookup_id": None,
        "providers": None,
        "errors": None,
        **fields,
    }
    return json.dumps(body, separators=(",", ":"), default=str)


def _error(row: int, code: str, message: str, indicator: object = None) -> str:
    shown = indicator if isinstance(indicator, str) else None
    return _line(
        row,
        status="error",
        indicator=shown,
        errors=[{"field": "indicator", "code": code, "message": message}],
    )


class _Processor:
    checkpoint_rows: int | None = None

    def __init__(
        self,
        service: LookupService,
        principal: OrgPrincipal,
        params: Mapping[str, Any],
        configured: list[ConfiguredProvider],
        served: Served,
    ) -> None:
        self._service = service
        self._principal = principal
        self._column = str(params.get("column", "indicator"))
        self._force = bool(params.get("force_refresh", False))
        self._configured = configured
        self._served = served

    async def process(self, rows: Sequence[InputRow]) -> ChunkOutcome:
        gate = asyncio.Semaphore(CONCURRENCY)
        outcomes = await asyncio.gather(*(self._one(row, gate) for row in rows))
        lines = [line for line, _, _ in outcomes]
        lookups = [lookup for _, lookup, _ in outcomes if lookup is not None]
        records = [record for _, _, rows_ in outcomes for record in rows_]
        errors = sum(1 for _, lookup, _ in outcomes if lookup is None)
        predictions = self._service.predict

        async def write(db: AsyncSession) -> None:
            db.add_all(lookups)
            await predictions.write_records(db, records)

        return ChunkOutcome(lines, errors, write)

    async def _one(
        self, row: InputRow, gate: asyncio.Semaphore
    ) -> tuple[str, Lookup | None, list[dict[str, Any]]]:
        if row.problem is not None:
            return _error(row.index, "unreadable", f"the row {row.problem}"), None, []
        record = row.record
        text = record.get(self._column) if isinstance(record, dict) else None
        if not isinstance(text, str) or not text.strip():
            message = f"no indicator in the column {self._column!r}"
            return _error(row.index, "required", message), None, []
        try:
            indicator = self._service.canonical(text)
        except IndicatorRejected as exc:
            problem = (exc.errors or [{}])[0]
            code = str(problem.get("code", "rejected"))
            return _error(row.index, code, str(problem.get("message", exc.detail)), text), None, []
        async with gate:
            lookup, record_rows = await self._service.look_up(
                self._principal,
                indicator,
                self._configured,
                self._served,
                force_refresh=self._force,
                request_id=None,
                record=False,
            )
        line = _line(
            row.index,
            indicator=lookup.indicator,
            type=lookup.indicator_type,
            verdict=lookup.verdict,
            score=lookup.score,
            lookup_id=str(lookup.id),
            providers={entry["provider"]: entry["status"] for entry in lookup.results},
        )
        return line, lookup, record_rows


class LookupBulkKind:
    """`lookup_bulk`: one lookup per row of the uploaded file."""

    name = KIND
    params_model: type[BaseModel] = LookupBulkParams
    submitted_as_job = True
    csv_columns = (
        "row",
        "status",
        "indicator",
        "type",
        "verdict",
        "score",
        "lookup_id",
        "providers",
        "errors",
    )

    def __init__(self, service: LookupService) -> None:
        self._service = service

    def csv_row(self, line: Mapping[str, Any]) -> list[Any]:
        return [
            line["row"],
            line["status"],
            line["indicator"] or "",
            line["type"] or "",
            line["verdict"] or "",
            "" if line["score"] is None else line["score"],
            line["lookup_id"] or "",
            "" if line["providers"] is None else json.dumps(line["providers"]),
            "" if line["errors"] is None else json.dumps(line["errors"]),
        ]

    async def check(self, principal: OrgPrincipal, params: BaseModel) -> None:
        if not principal.can(Permission.LOOKUPS_RUN):
            raise Forbidden("Bulk lookups need the permission lookups:run.")
        assert isinstance(params, LookupBulkParams)  # noqa: S101 - validated with params_model
        await self._service.setup(principal, params.providers)

    async def prepare(self, principal: OrgPrincipal, params: Mapping[str, Any]) -> _Processor:
        names = params.get("providers")
        configured, served = await self._service.setup(principal, names)
        return _Processor(self._service, principal, params, configured, served)

    async def ended(self, db: AsyncSession, job: Job) -> None:
        return None  # the lookups and their records were written at each checkpoint
