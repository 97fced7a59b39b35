"""Dependencies of the webhook routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.auth.deps import require
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.webhooks.service import WebhookRuntime


def _runtime(request: Request) -> WebhookRuntime:
    runtime: WebhookRuntime = request.app.state.webhooks
    return runtime


Webhooks = Annotated[WebhookRuntime, Depends(_runtime)]
CanReadWebhooks = Annotated[OrgPrincipal, Depends(require(Permission.WEBHOOKS_READ))]
CanManageWebhooks = Annotated[OrgPrincipal, Depends(require(Permission.WEBHOOKS_MANAGE))]
