"""The collector skips what lives as long as a serving process (gc.freeze at start),
only in a serving process, and only for as long as the application runs.

Found in review: every lifespan start froze everything alive, including earlier,
stopped applications, which then could never be freed (40 start/stop cycles in one
process: 164 -> 219 MiB). Thawing at stop fixed that, but then every start ran a full
collection over the whole process: a test suite starting thousands of applications
took nearly three times as long. Only `assay serve` workers freeze now.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import pytest

from assay.app import app_from_environment, create_app
from assay.core.memory import set_heap_freezing
from assay.settings import Settings


@pytest.fixture
def serving_process() -> Iterator[None]:
    set_heap_freezing(True)
    try:
        yield
    finally:
        set_heap_freezing(False)
        gc.unfreeze()


async def test_a_serving_app_is_frozen_and_a_stopped_one_is_collectable(
    settings_factory: Callable[..., Settings], database_url: str, serving_process: None
) -> None:
    settings = settings_factory(database_url=database_url)
    references = []
    for _ in range(2):
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            # Serving: the long-lived objects are out of the collector's way.
            assert gc.get_freeze_count() > 0
        references.append(weakref.ref(app))
        del app
    gc.collect()
    assert gc.get_freeze_count() == 0
    assert [ref() for ref in references] == [None, None]


async def test_an_app_outside_a_serving_process_freezes_nothing(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    gc.unfreeze()
    app = create_app(settings_factory(database_url=database_url))
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0


def test_the_serve_factory_turns_freezing_on(
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_factory()
    monkeypatch.setattr("assay.app.load_settings", lambda: settings)
    from assay.core import memory

    try:
        app_from_environment()
        assert memory._freezing
    finally:
        set_heap_freezing(False)
