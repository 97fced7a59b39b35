"""Jobs fixtures: small chunks and checkpoints, so a few rows exercise many of both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from assay.settings import Settings

JOB_SETTINGS: dict[str, Any] = {
    "jobs_chunk_rows": 4,
    "jobs_checkpoint_rows": 2,
    "jobs_retry_base_seconds": 0,
    "jobs_retry_max_seconds": 0,
    "jobs_events_poll_seconds": 0.02,
    "prediction_records_sync": True,
    # Tests poll a job's state far more often than a person would.
    "rate_limit_management": "1000000/minute",
}


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], database_url: str) -> Settings:
    return settings_factory(database_url=database_url, **JOB_SETTINGS)
