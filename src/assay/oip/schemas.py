"""The Open Inference Protocol's wire format (KServe V2, REST): request and response
bodies of the /v2 routes, with tensors as JSON."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ParameterValue = bool | int | float | str
Parameters = dict[Annotated[str, StringConstraints(max_length=128)], ParameterValue]


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
