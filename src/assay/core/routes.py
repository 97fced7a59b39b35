"""Walk every API route of an application, however routers were included."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts


def iter_api_routes(app: FastAPI) -> Iterator[APIRoute]:
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        if context.path != route.path:
            # Logs, metrics and the public list all key on route.path.
            msg = (
                f"route {route.path!r} is mounted under a prefix given to include_router; "
                "declare the prefix on the APIRouter instead"
            )
            raise RuntimeError(msg)
        yield route
