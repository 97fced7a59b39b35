"""Errors of the key lifecycle."""

from __future__ import annotations

from assay.core.errors import Conflict, NotFound


class DataKeyNotFound(NotFound):
    slug, title = "data-key-not-found", "No such data key"


class DataKeyInUse(Conflict):
    """Retiring a key that still seals values (the answer says how many, per column)."""

    slug, title = "data-key-in-use", "The data key still seals values"


class DataKeyNotRetirable(Conflict):
    """Retiring the active key, or a key deactivated too recently for every process to
    have stopped sealing with it."""

    slug, title = "data-key-not-retirable", "The data key cannot be retired now"
