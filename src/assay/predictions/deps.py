"""Dependencies of the predictions routes: the application's `PredictService`, and who
may predict or read prediction records."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.predictions.service import PredictService


async def predict_service(request: Request) -> PredictService:
    # Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, and that
    # hop (a thread wake-up per request) cost more than anything else on the predict path.
    service: PredictService = request.app.state.predictions
    return service


Predictions = Annotated[PredictService, Depends(predict_service)]
CanPredict = Annotated[OrgPrincipal, Depends(require(Permission.PREDICT))]
CanReadPredictions = Annotated[OrgPrincipal, Depends(require(Permission.PREDICTIONS_READ))]
CanRevealPredictions = Annotated[OrgPrincipal, Depends(require(Permission.PREDICTIONS_REVEAL))]
