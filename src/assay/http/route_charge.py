"""Which rate-limit class charges a route that declares none, and when.

A route that declares a class is charged by that dependency. One that authenticates is
charged the default class by authentication, keyed by the principal it establishes;
an anonymous one by the router-wide dependency, keyed by address. Decided once per
route (a `RouteMarkerCache`), so the hot path pays a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, TypeVar

from fastapi import Request
from starlette.types import Scope

from assay.http.rate_limit import (
    APPLIED_STATE_KEY,
    EXEMPT_PATHS,
    RateClass,
    RateLimitDependency,
    limiter_of,
)
from assay.http.route_markers import RouteMarkerCache


class RouteCharge(Enum):
    """How a route is charged when it declares no class of its own (decided once per route)."""

    DECLARED = "declared"  # it declares a class: that dependency charges it
    PRINCIPAL = "principal"  # the default class, by authentication, keyed by the principal
    ANONYMOUS = "anonymous"  # the default class, by the router-wide dependency, by address
    EXEMPT = "exempt"  # a probe (EXEMPT_PATHS): never limited


F = TypeVar("F", bound=Callable[..., Any])


_AUTHENTICATORS: list[Callable[..., Any]] = []


def establishes_principal(dependency: F) -> F:
    """Mark `dependency` as the one that establishes a request's principal.

    A route that depends on it, directly or through another dependency, and declares no
    class is charged the default class by it, keyed by the principal: it must end with
    ``if default_limit_due(scope): await enforce_default_for_principal(request)``.
    """
    _AUTHENTICATORS.append(dependency)
    return dependency


def _route_charge_of(route: Any, calls: list[Callable[..., Any]]) -> RouteCharge:
    if any(isinstance(call, RateLimitDependency) for call in calls):
        return RouteCharge.DECLARED
    if getattr(route, "path", None) in EXEMPT_PATHS:
        return RouteCharge.EXEMPT
    if any(call is known for call in calls for known in _AUTHENTICATORS):
        return RouteCharge.PRINCIPAL
    return RouteCharge.ANONYMOUS


_route_charge = RouteMarkerCache(_route_charge_of, RouteCharge.ANONYMOUS)


def route_charge(scope: Scope) -> RouteCharge:
    """How the matched route is charged (ANONYMOUS before routing)."""
    return _route_charge.value_for(scope)


async def enforce_default_rate_limit(request: Request) -> None:
    """Router-wide dependency: the default class for anonymous routes, by address.

    Routes with a class of their own are charged by it; routes that authenticate, by
    authentication once the principal is known (it runs after this dependency).
    """
    charge = _route_charge.value_for(request.scope)
    if charge is RouteCharge.ANONYMOUS:
        await limiter_of(request).enforce(request.scope, RateClass.DEFAULT)
    elif charge is RouteCharge.EXEMPT:
        # Decided: the middleware must not charge the response either.
        request.scope.setdefault("state", {})[APPLIED_STATE_KEY] = True


def default_limit_due(scope: Scope) -> bool:
    """Whether authentication must charge the default class now: the route authenticates,
    declares no class, and nothing charged this request yet. Synchronous and a dictionary
    lookup on routes that declare a class (the scoring hot path)."""
    return _route_charge.value_for(scope) is RouteCharge.PRINCIPAL and not scope["state"].get(
        APPLIED_STATE_KEY
    )


async def enforce_default_for_principal(request: Request) -> None:
    """The default class, keyed by the principal authentication has just put in the state."""
    await limiter_of(request).enforce(request.scope, RateClass.DEFAULT)


def declared_rate_classes(calls: Sequence[Any]) -> set[RateClass]:
    """The classes a route's dependency callables charge (for structural tests)."""
    classes = {call.rate_class for call in calls if isinstance(call, RateLimitDependency)}
    if not classes and enforce_default_rate_limit in calls:
        classes.add(RateClass.DEFAULT)
    return classes
