"""Typed results: frozen dataclasses read from Assay's JSON (no validation library).

Each keeps the JSON it was read from in `raw`, so members a newer server adds are not
lost to a client that does not know them yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from assay_client.errors import FieldError

JSON = dict[str, Any]
InputFormat = Literal["csv", "jsonl"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    # fromisoformat before 3.11 does not read a trailing "Z".
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _required_time(value: Any) -> datetime:
    parsed = _time(value)
    if parsed is None:
        msg = "a required timestamp is missing"
        raise ValueError(msg)
    return parsed


# --- predict ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredBy:
    """Exactly what scored: the model, its version and that version's digests."""

    name: str
    version: int
    digest: str
    artifact_digest: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoredBy:
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            digest=str(data["digest"]),
            artifact_digest=data.get("artifact_digest"),
        )


@dataclass(frozen=True)
class Prediction:
    """One scored record."""

    index: int
    score: float
    label: str | None
    risk: str | None
    derived: JSON
    explanation: JSON | None
    raw: JSON = field(repr=False, compare=False)


@dataclass(frozen=True)
class RowError:
    """One record that could not be scored, with every problem it has."""

    index: int
    errors: list[FieldError]
    raw: JSON = field(repr=False, compare=False)


PredictResultItem = Prediction | RowError


def _result_item(data: Mapping[str, Any]) -> PredictResultItem:
    if "errors" in data:
        return RowError(
            index=int(data["index"]),
            errors=[FieldError.from_json(e) for e in data["errors"]],
            raw=dict(data),
        )
    return Prediction(
        index=int(data["index"]),
        score=float(data["score"]),
        label=data.get("label"),
        risk=data.get("risk"),
        derived=dict(data.get("derived") or {}),
        explanation=data.get("explanation"),
        raw=dict(data),
    )


@dataclass(frozen=True)
class PredictResult:
    """The answer to a predict call: one result per record, in order."""

    model: ScoredBy
    request_id: str
    results: list[PredictResultItem]
    raw: JSON = field(repr=False, compare=False)

    @property
    def predictions(self) -> list[Prediction]:
        return [r for r in self.results if isinstance(r, Prediction)]

    @property
    def row_errors(self) -> list[RowError]:
        return [r for r in self.results if isinstance(r, RowError)]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PredictResult:
        return cls(
            model=ScoredBy.from_json(data["model"]),
            request_id=str(data["request_id"]),
            results=[_result_item(item) for item in data["results"]],
            raw=dict(data),
        )


# --- Open Inference Protocol -----------------------------------------------------------


@dataclass(frozen=True)
class Tensor:
    """An OIP V2 tensor: name, datatype, shape and flat row-major data."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "datatype": self.datatype,
            "shape": self.shape,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tensor:
        return cls(
            name=str(data["name"]),
            datatype=str(data["datatype"]),
            shape=[int(n) for n in data["shape"]],
            data=_flatten(data.get("data", [])),
        )


def _flatten(values: Any) -> list[Any]:
    if not isinstance(values, list):
        return [values]
    flat: list[Any] = []
    for value in values:
        flat.extend(_flatten(value) if isinstance(value, list) else [value])
    return flat


@dataclass(frozen=True)
class InferResult:
    """An OIP V2 inference response."""

    model_name: str
    model_version: str | None
    id: str | None
    outputs: list[Tensor]
    raw: JSON = field(repr=False, compare=False)

    def output(self, name: str) -> Tensor:
        for tensor in self.outputs:
            if tensor.name == name:
                return tensor
        raise KeyError(name)

    def rows(self) -> list[JSON]:
        """The outputs back as one dict per row (`{"score": ..., "label": ..., ...}`)."""
        if not self.outputs:
            return []
        count = self.outputs[0].shape[0] if self.outputs[0].shape else 0
        return [{t.name: t.data[i] for t in self.outputs} for i in range(count)]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InferResult:
        version = data.get("model_version")
        return cls(
            model_name=str(data["model_name"]),
            model_version=None if version is None else str(version),
            id=data.get("id"),
            outputs=[Tensor.from_json(o) for o in data.get("outputs", [])],
            raw=dict(data),
        )


# --- models -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersion:
    version: int
    status: str
    status_reason: str | None
    content_digest: str
    artifact_digest: str | None
    created_at: datetime
    raw: JSON = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelVersion:
        return cls(
            version=int(data["version"]),
            status=str(data["status"]),
            status_reason=data.get("status_reason"),
            content_digest=str(data["content_digest"]),
            artifact_digest=data.get("artifact_digest"),
            created_at=_required_time(data["created_at"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Model:
    """A registered model: its versions, aliases and input schema."""

    id: str
    name: str
    kind: str
    description: str
    created_at: datetime
    aliases: dict[str, int]
    versions: list[ModelVersion]
    input_schema: JSON | None
    raw: JSON = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            kind=str(data["kind"]),
            description=str(data.get("description") or ""),
            created_at=_required_time(data["created_at"]),
            aliases={str(k): int(v) for k, v in (data.get("aliases") or {}).items()},
            versions=[ModelVersion.from_json(v) for v in data.get("versions") or []],
            input_schema=data.get("input_schema"),
            raw=dict(data),
        )


# --- jobs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobProgress:
    done: int
    total: int
    row_errors: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobProgress:
        return cls(int(data["done"]), int(data["total"]), int(data["row_errors"]))


@dataclass(frozen=True)
class Job:
    """A job: state, progress, attempts, and (once it failed) its error."""

    id: str
    kind: str
    state: str
    progress: JobProgress
    attempts: int
    submitted_by: str
    params: JSON
    error: str | None
    cancel_requested: bool
    partial: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    raw: JSON = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            state=str(data["state"]),
            progress=JobProgress.from_json(data["progress"]),
            attempts=int(data["attempts"]),
            submitted_by=str(data["submitted_by"]),
            params=dict(data.get("params") or {}),
            error=data.get("error"),
            cancel_requested=bool(data["cancel_requested"]),
            partial=bool(data["partial"]),
            created_at=_required_time(data["created_at"]),
            started_at=_time(data.get("started_at")),
            finished_at=_time(data.get("finished_at")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobPage:
        return cls([Job.from_json(j) for j in data["items"]], data.get("next_cursor"))


@dataclass(frozen=True)
class JobEvent:
    """One event of a job's stream: `state` (a state change), `progress`, or `done`.

    `done` is the last event; the iterator that yields it then ends.
    """

    id: int
    event: str
    job_id: str
    state: str
    progress: JobProgress
    cancel_requested: bool
    error: str | None
    raw: JSON = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.event == "done"

    @classmethod
    def from_json(cls, event_id: int, event: str, data: Mapping[str, Any]) -> JobEvent:
        return cls(
            id=event_id,
            event=event,
            job_id=str(data["job_id"]),
            state=str(data["state"]),
            progress=JobProgress.from_json(data["progress"]),
            cancel_requested=bool(data.get("cancel_requested", False)),
            error=data.get("error"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ResultDownload:
    """What `download_result` wrote: where, how many bytes, and whether it is partial."""

    path: str | None
    bytes_written: int
    format: InputFormat
    partial: bool
