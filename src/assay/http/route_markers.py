"""Read what a route declares through its dependencies (rate-limit class, upload size).

A marker is a dependency callable. It is found by walking the matched route's
dependency tree once; the answer is cached per route object, so the hot path pays a
dictionary lookup. The reader also gets the route itself, for what a path decides
(probe routes exempt from rate limits).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from fastapi.dependencies.models import Dependant
from starlette.types import Scope

T = TypeVar("T")


def dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """Every dependency callable of `dependant`, its sub-dependencies included."""
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from dependency_calls(sub)


class RouteMarkerCache(Generic[T]):
    """Remembers, per route, the value `read` derives from the route and its dependency
    callables."""

    def __init__(self, read: Callable[[Any, list[Callable[..., Any]]], T], default: T) -> None:
        self._read = read
        self._default = default
        # Keyed by id() because Starlette routes define __eq__ without __hash__; the weak
        # reference tells a live route from a collected one whose id was reused.
        self._values: dict[int, tuple[weakref.ref[Any], T]] = {}

    def value_for(self, scope: Scope) -> T:
        route = scope.get("route")
        dependant = getattr(route, "dependant", None)
        if not isinstance(dependant, Dependant):
            return self._default
        entry = self._values.get(id(route))
        if entry is not None and entry[0]() is route:
            return entry[1]
        value = self._read(route, list(dependency_calls(dependant)))
        self._values[id(route)] = (weakref.ref(route), value)
        return value
