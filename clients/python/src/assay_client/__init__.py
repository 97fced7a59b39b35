"""A slim, typed client for Assay: predict, Open Inference Protocol, jobs, webhooks.

from assay_client import Client

with Client("https://assay.example", api_key="assay_sk_...") as assay:
    result = assay.predict("fraud-rules", {"amount": 5000, "country": "GB"})
"""

from assay_client._async import AsyncClient
from assay_client._base import __version__
from assay_client._sync import Client
from assay_client.errors import (
    AssayError,
    BadRequest,
    Conflict,
    DependencyUnavailable,
    FieldError,
    Forbidden,
    MethodNotAllowed,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from assay_client.oip import rows_to_inputs
from assay_client.types import (
    InferResult,
    Job,
    JobEvent,
    JobPage,
    JobProgress,
    Model,
    ModelVersion,
    Prediction,
    PredictResult,
    ResultDownload,
    RowError,
    ScoredBy,
    Tensor,
)

__all__ = [
    "AssayError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "DependencyUnavailable",
    "FieldError",
    "Forbidden",
    "InferResult",
    "Job",
    "JobEvent",
    "JobPage",
    "JobProgress",
    "MethodNotAllowed",
    "Model",
    "ModelUnavailable",
    "ModelVersion",
    "NotFound",
    "PayloadTooLarge",
    "PredictResult",
    "Prediction",
    "RateLimited",
    "ResultDownload",
    "RowError",
    "ScoredBy",
    "ServerError",
    "ServiceUnavailable",
    "Tensor",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "__version__",
    "rows_to_inputs",
]
