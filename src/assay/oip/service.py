"""The Open Inference Protocol (KServe V2) over REST: wire format and tensor conventions.

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

The **binary tensor data** extension is supported both ways, as the Triton client uses
it by default: a request whose ``Inference-Header-Content-Length`` header gives the
length of its JSON part carries, after it, the raw data of every input whose
parameters have ``binary_data_size`` (in input order; numbers little-endian, ``BOOL``
one byte each, ``BYTES`` each element a 4-byte little-endian length and its UTF-8
bytes). Outputs are binary when the request asks (``binary_data_output``, or
``binary_data`` on an output); the answer is then the JSON header followed by the
outputs' raw data, with the same header naming the JSON part's length. The
shared-memory and classification extensions are not supported: requests that need them
get a 400 problem saying so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.errors import BadRequest, NotFound, ValidationFailed
from assay.core.principal import OrgPrincipal
from assay.engine.results import PredictionResult
from assay.engine.schema.definition import FieldSpec, SchemaDefinition
from assay.engine.schema.input_schema import InputSchema
from assay.predictions.service import PredictService
from assay.registry import repository as registry
from assay.registry.models import ModelVersion, RegisteredModel

SERVER_NAME = "assay"
# Optional OIP extensions Assay implements (Triton's names): binary tensor data only; not
# classification, sequences, shared memory, model repository, statistics, ...
EXTENSIONS: tuple[str, ...] = ("binary_tensor_data",)
PLATFORMS = {"ml": "assay-ml", "rules": "assay-rules", "ensemble": "assay-ensemble"}

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
MAX_VERSION_SEGMENT = 64
# The registry's alias rule; a segment of digits only is always a version number.
_ALIAS_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
BINARY_SIZE = "binary_data_size"
BINARY_OUTPUT = "binary_data_output"
BINARY_DATA = "binary_data"
# Element sizes of the fixed-size datatypes in binary tensor data (little-endian).
BINARY_DTYPES: dict[str, str] = {
    "BOOL": "|u1",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
# Parameters that only make sense with an extension Assay does not implement.
_UNSUPPORTED_PARAMETERS = {
    "shared_memory_region": "shared-memory",
    "shared_memory_byte_size": "shared-memory",
    "shared_memory_offset": "shared-memory",
    "classification": "classification",
}
_MAX_ERRORS = 100

ParameterValue = bool | int | float | str
Parameters = dict[Annotated[str, StringConstraints(max_length=128)], ParameterValue]


# --- wire format -------------------------------------------------------------------------


class _Wire(BaseModel):
    # Unknown members are ignored, as OIP servers do, so clients that send more work.
    model_config = ConfigDict(extra="ignore")


class RequestInput(_Wire):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    shape: list[Annotated[int, Field(ge=0, le=1_000_000_000)]] = Field(min_length=1, max_length=8)
    datatype: Annotated[str, StringConstraints(max_length=16)]
    parameters: Parameters | None = None
    # Absent when the tensor travels as binary data after the JSON header.
    data: list[Any] | None = None


class RequestOutput(_Wire):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    parameters: Parameters | None = None


class InferenceRequest(_Wire):
    """An OIP inference request (tensors as JSON)."""

    id: Annotated[str, StringConstraints(max_length=256)] | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1000)
    outputs: list[RequestOutput] | None = Field(None, max_length=16)


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


# --- versions and metadata ---------------------------------------------------------------


def version_ref(segment: str | None) -> registry.VersionRef:
    """The ``versions/<v>`` path segment: a version number, or an alias such as ``staging``;
    without it, the ``production`` alias."""
    if segment is None:
        return registry.VersionRef.parse(None, None)
    if segment.isascii() and segment.isdigit() and len(segment) <= 9 and int(segment) >= 1:
        return registry.VersionRef(version=int(segment))
    if _ALIAS_SEGMENT.match(segment):
        return registry.VersionRef(alias=segment)
    raise NotFound(f"No version {segment[:MAX_VERSION_SEGMENT]!r}: use a number or an alias.")


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


def model_metadata(
    model: RegisteredModel, version: ModelVersion, numbers: Iterable[int]
) -> ModelMetadata:
    """Metadata of one version: its inputs come from that version's input schema."""
    definition = SchemaDefinition.model_validate(version.definition["schema"])
    return ModelMetadata(
        name=model.name,
        versions=[str(n) for n in numbers],
        platform=PLATFORMS.get(model.kind, f"assay-{model.kind}"),
        inputs=[
            MetadataTensor(name=spec.name, datatype=FIELD_DATATYPE[spec.type], shape=[-1])
            for spec in input_fields(definition)
        ],
        outputs=output_tensors(),
    )


async def read_metadata(
    service: PredictService, db: AsyncSession, principal: OrgPrincipal, name: str, ref: str | None
) -> ModelMetadata:
    resolved = await service.resolve(principal, name, version_ref(ref))
    versions = await registry.versions_of(db, principal, resolved.model)
    return model_metadata(resolved.model, resolved.version, (v.version for v in versions))


# --- tensors to records ------------------------------------------------------------------


class _Problems:
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


def check_extensions(request: InferenceRequest) -> None:
    """Refuse what needs an OIP extension Assay does not implement (400)."""
    for tensor in request.inputs:
        _refuse_parameters(tensor.parameters or {}, f"input '{tensor.name}'")
    for output in request.outputs or ():
        _refuse_parameters(output.parameters or {}, f"output '{output.name}'")


# --- binary tensor data ------------------------------------------------------------------


def _binary_size(tensor: RequestInput) -> int | None:
    value = (tensor.parameters or {}).get(BINARY_SIZE)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise BadRequest(f"Input '{tensor.name[:64]}': {BINARY_SIZE} must be a byte count.")
    return value


def _split_bytes_elements(data: bytes) -> list[bytes] | None:
    """``BYTES`` elements: each a 4-byte little-endian length, then that many bytes."""
    elements: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            return None
        length = int.from_bytes(data[offset : offset + 4], "little")
        offset += 4
        if offset + length > len(data):
            return None
        elements.append(data[offset : offset + length])
        offset += length
    return elements


def _binary_strings(where: str, count: int, data: bytes, problems: _Problems) -> list[Any] | None:
    elements = _split_bytes_elements(data)
    if elements is None or len(elements) != count:
        problems.add(
            where, "shape", f"binary data does not hold {count} length-prefixed BYTES elements"
        )
        return None
    try:
        # Strict UTF-8 has no surrogates; a NUL is one byte of it, and no text in Assay
        # may hold one (as in JSON bodies: PostgreSQL could not store the record).
        values = [element.decode("utf-8") for element in elements]
    except UnicodeDecodeError:
        problems.add(where, "datatype", "holds BYTES elements that are not UTF-8 text")
        return None
    if any(b"\x00" in element for element in elements):
        problems.add(where, "nul_character", "holds a BYTES element with U+0000 (NUL)")
        return None
    return values


def _binary_values(tensor: RequestInput, data: bytes, problems: _Problems) -> list[Any] | None:
    where = f"inputs.{tensor.name[:64]}"
    count = math.prod(tensor.shape)
    if tensor.datatype == "BYTES":
        return _binary_strings(where, count, data, problems)
    dtype = BINARY_DTYPES.get(tensor.datatype)
    if dtype is None:
        problems.add(where, "datatype", f"datatype {tensor.datatype!r} is not supported here")
        return None
    itemsize = np.dtype(dtype).itemsize
    if len(data) != count * itemsize:
        problems.add(
            where,
            "shape",
            f"binary data has {len(data)} bytes; shape {tensor.shape} of "
            f"{tensor.datatype} needs {count * itemsize}",
        )
        return None
    array = np.frombuffer(data, dtype=dtype)
    if tensor.datatype == "BOOL":
        if (array > 1).any():
            problems.add(where, "datatype", "holds BOOL bytes other than 0 and 1")
            return None
        return [bool(v) for v in array.tolist()]
    values: list[Any] = array.tolist()
    return values


def attach_binary_data(request: InferenceRequest, binary: bytes | None) -> InferenceRequest:
    """The request with each binary input's data read from `binary` (the bytes after the
    JSON header, in input order); framing problems are 400s, content problems 422s."""
    sizes = [_binary_size(tensor) for tensor in request.inputs]
    if binary is None:
        if any(size is not None for size in sizes):
            raise BadRequest(
                f"An input declares {BINARY_SIZE}, but the request carries no binary data "
                "(the Inference-Header-Content-Length header is missing)."
            )
        return request
    declared = sum(size for size in sizes if size is not None)
    if declared != len(binary):
        raise BadRequest(
            f"The inputs declare {declared} bytes of binary data, but {len(binary)} follow "
            "the JSON header."
        )
    problems = _Problems()
    inputs: list[RequestInput] = []
    offset = 0
    for tensor, size in zip(request.inputs, sizes, strict=True):
        if size is None:
            inputs.append(tensor)
            continue
        if tensor.data is not None:
            problems.add(f"inputs.{tensor.name[:64]}", "data", "has both JSON data and binary data")
        values = _binary_values(tensor, binary[offset : offset + size], problems)
        offset += size
        inputs.append(tensor.model_copy(update={"data": values or []}))
    problems.raise_if_any("The binary tensor data does not fit this model.")
    return request.model_copy(update={"inputs": inputs})


def binary_outputs(request: InferenceRequest, names: Sequence[str]) -> frozenset[str]:
    """The outputs to send as binary data: those asked for with ``binary_data``, or all
    but those refusing it when the request sets ``binary_data_output``."""
    every = (request.parameters or {}).get(BINARY_OUTPUT) is True
    asked = {
        output.name: (output.parameters or {}).get(BINARY_DATA) for output in request.outputs or ()
    }
    return frozenset(
        name
        for name in names
        if asked.get(name) is True or (every and asked.get(name) is not False)
    )


def _refuse_parameters(parameters: Mapping[str, ParameterValue], where: str) -> None:
    for key, extension in _UNSUPPORTED_PARAMETERS.items():
        if key in parameters:
            raise BadRequest(
                f"Parameter '{key}' of {where} needs the {extension} extension, which is not "
                "supported."
            )


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


def _tensor_values(tensor: RequestInput, problems: _Problems) -> list[Any] | None:
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
    problems = _Problems()
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
    problems = _Problems()
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


# --- results to tensors ------------------------------------------------------------------


def encode_outputs(
    results: Sequence[PredictionResult], names: Sequence[str]
) -> list[ResponseOutput]:
    shape = [len(results)]
    columns = _output_columns(results, names)
    return [
        ResponseOutput(name=name, datatype=OUTPUT_DATATYPES[name], shape=shape, data=columns[name])
        for name in names
    ]


def _output_columns(
    results: Sequence[PredictionResult], names: Sequence[str]
) -> dict[str, list[Any]]:
    return {
        "score": [r.score for r in results],
        "label": [r.label or "" for r in results] if "label" in names else [],
        "risk": [r.risk or "" for r in results] if "risk" in names else [],
    }


def _raw(datatype: str, values: Sequence[Any]) -> bytes:
    if datatype == "BYTES":
        parts: list[bytes] = []
        for value in values:
            encoded = str(value).encode("utf-8")
            parts.append(len(encoded).to_bytes(4, "little"))
            parts.append(encoded)
        return b"".join(parts)
    return np.asarray(values, dtype=BINARY_DTYPES[datatype]).tobytes()


@dataclass(frozen=True, slots=True)
class BinaryInferenceResponse:
    """A response with binary outputs: `header` (JSON) then `data`, as one body."""

    header: bytes
    data: bytes


def encode_binary_response(
    response: InferenceResponse,
    results: Sequence[PredictionResult],
    names: Sequence[str],
    binary: frozenset[str],
) -> BinaryInferenceResponse:
    columns = _output_columns(results, names)
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name in names:
        datatype = OUTPUT_DATATYPES[name]
        output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [len(results)]}
        if name in binary:
            raw = _raw(datatype, columns[name])
            output["parameters"] = {BINARY_SIZE: len(raw)}
            chunks.append(raw)
        else:
            output["data"] = columns[name]
        outputs.append(output)
    header = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.id is not None:
        header["id"] = response.id
    text = json.dumps(header, separators=(",", ":"), allow_nan=False)
    return BinaryInferenceResponse(text.encode(), b"".join(chunks))


async def infer(
    service: PredictService,
    principal: OrgPrincipal,
    name: str,
    version: str | None,
    request: InferenceRequest,
    *,
    request_id: str | None,
    binary_data: bytes | None = None,
) -> InferenceResponse | BinaryInferenceResponse:
    """Decode the tensors (JSON or binary), score the rows strictly (recorded like native
    predictions), and answer with the output tensors (JSON or binary, as asked)."""
    check_extensions(request)
    names = requested_outputs(request)
    binary = binary_outputs(request, names)
    request = attach_binary_data(request, binary_data)
    served = await service.load(principal, name, version_ref(version))
    records = decode_inputs(
        request, served.loaded.scorer.schema, max_rows=service.settings.predict_max_batch
    )
    outcome = await service.predict_with(
        principal, served, records, strict=True, explain=False, request_id=request_id
    )
    # strict=True: every result is a prediction, or predict_with raised.
    results = [r for r in outcome.results if isinstance(r, PredictionResult)]
    response = InferenceResponse(
        model_name=served.model.name,
        model_version=str(served.version.version),
        id=request.id if request.id is not None else request_id,
        outputs=[] if binary else encode_outputs(results, names),
    )
    if binary:
        return encode_binary_response(response, results, names, binary)
    return response
