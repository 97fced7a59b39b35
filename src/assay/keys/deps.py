"""What the key routes need from the application."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.keys.reencrypt import KeyMaintenance


def _maintenance(request: Request) -> KeyMaintenance:
    maintenance: KeyMaintenance = request.app.state.key_maintenance
    return maintenance


Keys = Annotated[KeyMaintenance, Depends(_maintenance)]
