"""Imports every feature's tables so `Base.metadata` is complete for Alembic."""

from assay.audit import models as security_event_models
from assay.audit_trail import models as audit_trail_models
from assay.core.db import Base
from assay.events import models as event_models
from assay.jobs import models as job_models
from assay.keys import models as key_models
from assay.lookups import models as lookup_models
from assay.orgs import models as identity_models
from assay.providers import models as provider_models
from assay.registry import models as scoring_models
from assay.scans import models as scan_models
from assay.targets import models as target_models
from assay.watchlists import models as watchlist_models
from assay.webhooks import models as webhook_models

__all__ = [
    "Base",
    "audit_trail_models",
    "event_models",
    "identity_models",
    "job_models",
    "key_models",
    "lookup_models",
    "provider_models",
    "scan_models",
    "scoring_models",
    "security_event_models",
    "target_models",
    "watchlist_models",
    "webhook_models",
]
