"""Dependencies of the OIP routes: the application's `InferenceService`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.oip.service import InferenceService


async def inference_service(request: Request) -> InferenceService:
    # Async on purpose: a plain `def` dependency would cost a thread hop per request.
    service: InferenceService = request.app.state.inference
    return service


Inference = Annotated[InferenceService, Depends(inference_service)]
