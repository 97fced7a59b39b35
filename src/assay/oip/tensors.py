"""Tensors to records and results to tensors: the conventions where OIP meets Assay.

OIP speaks in tensors; Assay scores records that follow a version's input schema. The
two meet like this (docs/inference.md has the full description):

Inputs, either
- **one tensor per input field**: named after the field, shape ``[N]`` or ``[N, 1]``,
  a datatype that fits the field's type (number: ``FP16``/``FP32``/``FP64`` or any
  ``INT*``/``UINT*``; integer: ``INT*``/``UINT*``; boolean: ``BOOL``; string:
  ``BYTES``). Row ``i`` of every tensor makes record ``i``; fields without a tensor are
  absent (their defaults apply, required ones fail); or
- **one ``FP32``/``FP64`` matrix** of shape ``[N, F]``, under any name that is not a
  field name, whose columns are the *matrix fields* in schema order: the number and
  integer fields a client supplies (accepted as input, not derived). Other fields
  cannot travel in a matrix; when one of them is required, the matrix form is refused
  with the list of those fields.

Outputs: ``score`` (FP64), ``label`` and ``risk`` (BYTES; an empty string when the
model declares no such bands), each of shape ``[N]``.

OIP has no per-row errors, so inference is strict: one invalid row refuses the whole
request with a 422 problem naming every row and field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from assay.core.errors import ValidationFailed
from assay.engine.results import PredictionResult
from assay.engine.schema.definition import FieldSpec, SchemaDefinition
from assay.engine.schema.input_schema import InputSchema
from assay.oip.schemas import InferenceRequest, MetadataTensor, RequestInput, ResponseOutput

FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
INT_RANGES: dict[str, tuple[int, int]] = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
INT_TYPES = frozenset(INT_RANGES)
# The datatype a field is described with in metadata, and those it accepts.
FIELD_DATATYPE = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES"}
ACCEPTED_DATATYPES: dict[str, frozenset[str]] = {
    "number": FLOAT_TYPES | INT_TYPES,
    "integer": INT_TYPES,
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
}
MATRIX_DATATYPES = frozenset({"FP32", "FP64"})
OUTPUT_DATATYPES = {"score": "FP64", "label": "BYTES", "risk": "BYTES"}
_MAX_ERRORS = 100


def input_fields(definition: SchemaDefinition) -> list[FieldSpec]:
    """The fields a client may send, in schema order."""
    return [spec for spec in definition.fields if spec.accepts_input]


def matrix_fields(definition: SchemaDefinition) -> list[str]:
    """The columns of the ``[N, F]`` matrix form: supplied number and integer fields."""
    return [
        spec.name
        for spec in definition.fields
        if spec.accepts_input and spec.derive is None and spec.type in ("number", "integer")
    ]


def output_tensors() -> list[MetadataTensor]:
    return [MetadataTensor(name=n, datatype=d, shape=[-1]) for n, d in OUTPUT_DATATYPES.items()]


class TensorProblems:
    """Every problem with the request's tensors, reported together as one 422."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def add(self, field: str, code: str, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append({"field": field, "code": code, "message": message})

    def raise_if_any(self, detail: str) -> None:
        if self.errors:
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors[:3])
            raise ValidationFailed(f"{detail} {summary}", errors=self.errors)


def requested_outputs(request: InferenceRequest) -> list[str]:
    """The output names to return, in the order asked (all three when none are named)."""
    if not request.outputs:
        return list(OUTPUT_DATATYPES)
    names = [output.name for output in request.outputs]
    unknown = [n for n in names if n not in OUTPUT_DATATYPES]
    if unknown:
        raise ValidationFailed(
            f"Unknown output(s) {', '.join(repr(n[:64]) for n in unknown)}; the outputs are "
            f"{', '.join(OUTPUT_DATATYPES)}.",
            errors=[
                {"field": "outputs", "code": "unknown_output", "message": n[:64]} for n in unknown
            ],
        )
    return list(dict.fromkeys(names))


def _flatten(data: list[Any], shape: Sequence[int]) -> list[Any] | None:
    """Row-major elements of `data`, given flat or nested as `shape`; None if it fits neither."""
    expected = math.prod(shape)
    if len(data) == expected and not any(isinstance(v, list) for v in data):
        return data
    elements = data
    for _ in range(len(shape) - 1):
        if not all(isinstance(v, list) for v in elements):
            return None
        elements = [x for inner in elements for x in inner]
    if len(elements) != expected or any(isinstance(v, list) for v in elements):
        return None
    return elements


def _elements_fit(values: Sequence[Any], datatype: str) -> bool:
    if datatype == "BOOL":
        return all(type(v) is bool for v in values)
    if datatype == "BYTES":
        return all(type(v) is str for v in values)
    if datatype in FLOAT_TYPES:
        return all(type(v) is float or type(v) is int for v in values)
    low, high = INT_RANGES[datatype]
    return all(type(v) is int and low <= v <= high for v in values)


def _tensor_values(tensor: RequestInput, problems: TensorProblems) -> list[Any] | None:
    where = f"inputs.{tensor.name[:64]}"
    datatype = tensor.datatype
    if (
        datatype not in FLOAT_TYPES
        and datatype not in INT_TYPES
        and datatype not in ("BOOL", "BYTES")
    ):
        problems.add(where, "datatype", f"datatype {datatype!r} cannot be sent as JSON here")
        return None
    if tensor.data is None:
        problems.add(where, "data", "has no data (as JSON, or as binary data)")
        return None
    values = _flatten(tensor.data, tensor.shape)
    if values is None:
        problems.add(
            where,
            "shape",
            f"data does not match shape {tensor.shape} (flat or nested, row-major)",
        )
        return None
    if not _elements_fit(values, datatype):
        problems.add(where, "datatype", f"holds values that are not {datatype}")
        return None
    return values


def decode_inputs(
    request: InferenceRequest, schema: InputSchema, *, max_rows: int
) -> list[dict[str, Any]]:
    """The records the request's tensors describe (see the module docstring)."""
    definition = schema.definition
    by_name = {spec.name: spec for spec in input_fields(definition)}
    inputs = request.inputs
    if len(inputs) == 1 and inputs[0].name not in by_name and len(inputs[0].shape) == 2:
        return _decode_matrix(inputs[0], definition, max_rows)
    problems = TensorProblems()
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for tensor in inputs:
        where = f"inputs.{tensor.name[:64]}"
        spec = by_name.get(tensor.name)
        if spec is None:
            problems.add(
                where,
                "unknown_input",
                "is not an input field (or, alone and 2-D, an FP32/FP64 [N, F] matrix)",
            )
            continue
        if tensor.name in columns:
            problems.add(where, "duplicate", "is given twice")
            continue
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            problems.add(where, "shape", f"shape {tensor.shape} is not [N] or [N, 1]")
            continue
        if tensor.datatype not in ACCEPTED_DATATYPES[spec.type]:
            problems.add(
                where,
                "datatype",
                f"a {spec.type} field takes {FIELD_DATATYPE[spec.type]}"
                + (" (or another FP/INT type)" if spec.type == "number" else "")
                + (" (or another INT/UINT type)" if spec.type == "integer" else "")
                + f", not {tensor.datatype}",
            )
            continue
        if rows is not None and tensor.shape[0] != rows:
            problems.add(where, "shape", f"has {tensor.shape[0]} rows, the others {rows}")
            continue
        values = _tensor_values(tensor, problems)
        if values is not None:
            rows = tensor.shape[0]
            columns[tensor.name] = values
    problems.raise_if_any("The input tensors do not fit this model.")
    count = rows or 0
    _check_rows(count, max_rows)
    records: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, values in columns.items():
        for record, value in zip(records, values, strict=True):
            record[name] = value
    return records


def _decode_matrix(
    tensor: RequestInput, definition: SchemaDefinition, max_rows: int
) -> list[dict[str, Any]]:
    where = f"inputs.{tensor.name[:64]}"
    columns = matrix_fields(definition)
    others = [
        spec.name
        for spec in input_fields(definition)
        if spec.name not in columns and spec.is_required
    ]
    if others:
        listed = ", ".join(others[:20]) + (" ..." if len(others) > 20 else "")
        raise ValidationFailed(
            "A [N, F] matrix carries only the number and integer fields; this model also "
            f"requires {listed}. Send one tensor per field instead.",
            errors=[{"field": where, "code": "matrix_not_possible", "message": listed}],
        )
    problems = TensorProblems()
    rows, width = tensor.shape
    if tensor.datatype not in MATRIX_DATATYPES:
        problems.add(where, "datatype", f"a matrix is FP32 or FP64, not {tensor.datatype}")
    elif width != len(columns):
        problems.add(
            where,
            "shape",
            f"has {width} columns; this model's matrix has {len(columns)}: {', '.join(columns)}",
        )
    values = None if problems.errors else _tensor_values(tensor, problems)
    problems.raise_if_any("The input matrix does not fit this model.")
    assert values is not None  # noqa: S101 - no problems means the values were read
    _check_rows(rows, max_rows)
    return [
        dict(zip(columns, values[i * width : (i + 1) * width], strict=True)) for i in range(rows)
    ]


def _check_rows(rows: int, max_rows: int) -> None:
    if rows < 1:
        raise ValidationFailed(
            "The input tensors hold no rows.",
            errors=[{"field": "inputs", "code": "empty", "message": "N must be at least 1"}],
        )
    if rows > max_rows:
        raise ValidationFailed(
            f"At most {max_rows} rows per request.",
            errors=[{"field": "inputs", "code": "too_many", "message": f"max {max_rows}"}],
        )


def encode_outputs(
    results: Sequence[PredictionResult], names: Sequence[str]
) -> list[ResponseOutput]:
    shape = [len(results)]
    columns = output_columns(results, names)
    return [
        ResponseOutput(name=name, datatype=OUTPUT_DATATYPES[name], shape=shape, data=columns[name])
        for name in names
    ]


def output_columns(
    results: Sequence[PredictionResult], names: Sequence[str]
) -> dict[str, list[Any]]:
    return {
        "score": [r.score for r in results],
        "label": [r.label or "" for r in results] if "label" in names else [],
        "risk": [r.risk or "" for r in results] if "risk" in names else [],
    }
