"""Keep the cyclic garbage collector off what lives as long as the process.

Imported modules, loaded models and compiled schemas are hundreds of thousands of
objects that never become garbage. A full (generation 2) collection walks all of them:
measured under load on the predict path, pauses of 100-215 ms every few seconds that
collected nothing, which made up most of the p99 latency. `gc.freeze()` moves every
object that exists now into a permanent generation that collections skip; objects
created later are collected as usual, and reference counting frees everything as
always.

Only a serving process freezes (`assay serve` turns it on in each worker, through the
application factory): the freeze lasts as long as its application, whose lifespan thaws
everything when it stops. Elsewhere (tests, a host embedding `create_app`) nothing is
frozen: each start would otherwise run a full collection over the whole process, and a
test suite starts thousands of applications.
"""

from __future__ import annotations

import gc

_freezing = False


def set_heap_freezing(enabled: bool) -> None:
    """Turn freezing on for this process (a serving worker) or off again."""
    global _freezing  # noqa: PLW0603 - one switch per process, set before serving
    _freezing = enabled


def freeze_long_lived_objects(*, collect_first: bool) -> None:
    """In a serving process, exclude every object alive now from later collections.

    `collect_first` runs a full collection before, so no garbage is frozen with them:
    right for start-up, too long a pause while serving.
    """
    if not _freezing:
        return
    if collect_first:
        gc.collect()
    gc.freeze()


def thaw_long_lived_objects() -> None:
    """Undo `freeze_long_lived_objects`: everything frozen is collectable again."""
    if _freezing:
        gc.unfreeze()
