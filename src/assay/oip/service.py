"""The Open Inference Protocol (KServe V2) over REST: server and model metadata,
readiness, and inference, with the same principals, validation and prediction records
as the native API.

How tensors become records and results tensors is in `assay.oip.tensors`; the binary
tensor data extension (and the refusal of those not implemented) in
`assay.oip.extensions`; the wire format in `assay.oip.schemas`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from assay import __version__
from assay.core.errors import NotFound
from assay.core.principal import OrgPrincipal
from assay.engine.results import PredictionResult
from assay.engine.schema.definition import SchemaDefinition
from assay.oip.extensions import (
    EXTENSIONS,
    BinaryInferenceResponse,
    attach_binary_data,
    binary_outputs,
    check_extensions,
    encode_binary_response,
)
from assay.oip.schemas import (
    InferenceRequest,
    InferenceResponse,
    MetadataTensor,
    ModelMetadata,
    ModelReady,
    ServerMetadata,
)
from assay.oip.tensors import (
    FIELD_DATATYPE,
    decode_inputs,
    encode_outputs,
    input_fields,
    output_tensors,
    requested_outputs,
)
from assay.predictions.schemas import CacheOutcome
from assay.predictions.service import PredictService
from assay.registry.models import ModelVersion, RegisteredModel
from assay.registry.schemas import VersionRef
from assay.registry.service import ModelRegistry

SERVER_NAME = "assay"
PLATFORMS = {"ml": "assay-ml", "rules": "assay-rules", "ensemble": "assay-ensemble"}
MAX_VERSION_SEGMENT = 64
# The registry's alias rule; a segment of digits only is always a version number.
_ALIAS_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def version_ref(segment: str | None) -> VersionRef:
    """The ``versions/<v>`` path segment: a version number, or an alias such as ``staging``;
    without it, the ``production`` alias."""
    if segment is None:
        return VersionRef.parse(None, None)
    if segment.isascii() and segment.isdigit() and len(segment) <= 9 and int(segment) >= 1:
        return VersionRef(version=int(segment))
    if _ALIAS_SEGMENT.match(segment):
        return VersionRef(alias=segment)
    raise NotFound(f"No version {segment[:MAX_VERSION_SEGMENT]!r}: use a number or an alias.")


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


class InferenceService:
    """OIP's view of the registry and the predict path."""

    def __init__(self, predictions: PredictService, registry: ModelRegistry) -> None:
        self._predictions = predictions
        self._registry = registry

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata(name=SERVER_NAME, version=__version__, extensions=list(EXTENSIONS))

    async def model_metadata(
        self, db: AsyncSession, principal: OrgPrincipal, name: str, version: str | None
    ) -> ModelMetadata:
        resolved = await self._predictions.resolve(principal, name, version_ref(version))
        numbers = await self._registry.version_numbers(db, principal, resolved.model)
        return model_metadata(resolved.model, resolved.version, numbers)

    async def model_ready(
        self, principal: OrgPrincipal, name: str, version: str | None
    ) -> ModelReady:
        """Ready means loaded and verified: this loads the version if it is not in memory."""
        await self._predictions.load(principal, name, version_ref(version))
        return ModelReady(name=name, ready=True)

    async def infer(
        self,
        principal: OrgPrincipal,
        name: str,
        version: str | None,
        request: InferenceRequest,
        *,
        request_id: str | None,
        binary_data: bytes | None = None,
    ) -> tuple[InferenceResponse | BinaryInferenceResponse, CacheOutcome | None]:
        """Decode the tensors (JSON or binary), score the rows strictly (recorded like
        native predictions), and answer with the output tensors (JSON or binary, as asked)
        and what the prediction cache did (one row; None for several)."""
        check_extensions(request)
        names = requested_outputs(request)
        binary = binary_outputs(request, names)
        request = attach_binary_data(request, binary_data)
        served = await self._predictions.load(principal, name, version_ref(version))
        records = decode_inputs(
            request, served.scorer.schema, max_rows=self._predictions.settings.predict_max_batch
        )
        outcome = await self._predictions.predict_with(
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
            return encode_binary_response(response, results, names, binary), outcome.cache
        return response, outcome.cache
