"""What a committed change makes stale, dropped once it commits and never before.

Versions whose status changed, or whose model was deleted, leave this process's memory
(`ModelCache`); listeners (the predict path's alias resolutions, subscribed by the
application) hear which models' aliases or versions changed. Running after the commit,
a request in between cannot cache again what is about to change, and a change that
rolls back leaves every cache alone. Other processes follow within
`model_resolution_cache_seconds`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.after_commit import after_commit
from assay.registry.health import Changed
from assay.registry.model_cache import ModelCache

# Told, after a commit, that a model's aliases or its versions' health changed:
# (organisation id, model name).
ModelChangeListener = Callable[[uuid.UUID, str], None]


class ModelChanges:
    """The caches a registry change must reach, and the hooks that reach them."""

    def __init__(self, cache: ModelCache) -> None:
        self._cache = cache
        self._listeners: list[ModelChangeListener] = []

    def subscribe(self, listener: ModelChangeListener) -> None:
        self._listeners.append(listener)

    def versions_changed(self, db: AsyncSession, changed: Sequence[Changed]) -> None:
        """Once `db` commits: evict these versions, and tell the listeners of their models."""
        if not changed:
            return
        items = list(changed)

        def forget() -> None:
            for item in items:
                self._cache.evict(item.version_id)
            for org_id, model in dict.fromkeys((item.org_id, item.model) for item in items):
                self._tell(org_id, model)

        after_commit(db, forget)

    def model_changed(self, db: AsyncSession, org_id: uuid.UUID, model: str) -> None:
        """Once `db` commits: tell the listeners that this model's aliases changed."""
        after_commit(db, lambda: self._tell(org_id, model))

    def _tell(self, org_id: uuid.UUID, model: str) -> None:
        for listener in self._listeners:
            listener(org_id, model)
