"""OIP extensions: binary tensor data, and refusing the extensions Assay does not implement.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.core.errors import BadRequest
from assay.engine.results import PredictionResult
from assay.oip.schemas import InferenceRequest, InferenceResponse, ParameterValue, RequestInput
from assay.oip.tensors import OUTPUT_DATATYPES, TensorProblems, output_columns

# Optional OIP extensions Assay implements (Triton's names): binary tensor data only; not
# classification, sequences, shared memory, model repository, statistics, ...
EXTENSIONS: tuple[str, ...] = ("binary_tensor_data",)
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


def check_extensions(request: InferenceRequest) -> None:
    """Refuse what needs an OIP extension Assay does not implement (400)."""
    for tensor in request.inputs:
        _refuse_parameters(tensor.parameters or {}, f"input '{tensor.name}'")
    for output in request.outputs or ():
        _refuse_parameters(output.parameters or {}, f"output '{output.name}'")


def _refuse_parameters(parameters: Mapping[str, ParameterValue], where: str) -> None:
    for key, extension in _UNSUPPORTED_PARAMETERS.items():
        if key in parameters:
            raise BadRequest(
                f"Parameter '{key}' of {where} needs the {extension} extension, which is not "
                "supported."
            )


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


def _binary_strings(
    where: str, count: int, data: bytes, problems: TensorProblems
) -> list[Any] | None:
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


def _binary_values(tensor: RequestInput, data: bytes, problems: TensorProblems) -> list[Any] | None:
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
    problems = TensorProblems()
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
    columns = output_columns(results, names)
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
