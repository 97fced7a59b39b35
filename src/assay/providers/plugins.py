"""Python plugins: providers whose logic a declarative mapping cannot express.

A plugin is a class published under the entry-point group `assay.providers` (in the
plugin package's pyproject.toml: `[project.entry-points."assay.providers"]
my-feed = "my_package.feed:MyFeed"`), named by an organisation's provider document
(`plugin: my-feed`). Assay gives it the indicator, the organisation's credential and an
HTTP helper that goes through the outbound guard, and keeps everything else —
deadline, retries, breaker, quota, result cache, sealing the credential — as for any
provider. A plugin is code installed by the operator: it runs with Assay's rights, and
organisations can only choose among the installed ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from assay.indicators.schemas import Indicator, IndicatorType
from assay.outbound.service import OutboundClient, OutboundResponse

ENTRY_POINT_GROUP = "assay.providers"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a plugin makes of an answer: a 0-100 score (None: the provider knows
    nothing about the indicator), the normalised fields, a sentence of evidence."""

    score: float | None
    fields: dict[str, Any] = field(default_factory=dict)
    evidence: str = ""


class PluginHttp:
    """The HTTP a plugin gets: every request through the outbound guard (resolved
    address checked and pinned, no redirects, bounded time and size)."""

    def __init__(self, outbound: OutboundClient) -> None:
        self._outbound = outbound

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> OutboundResponse:
        return await self._outbound.request("GET", url, headers=headers)

    async def post(
        self,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> OutboundResponse:
        return await self._outbound.request("POST", url, data=form, headers=headers)


@runtime_checkable
class ProviderPlugin(Protocol):
    """The interface a plugin class implements (constructed with no arguments)."""

    supports: tuple[IndicatorType, ...]

    async def fetch(
        self, indicator: Indicator, *, base_url: str, credential: str | None, http: PluginHttp
    ) -> Any:
        """Ask the provider at `base_url` about `indicator`; return its answer (any value
        `normalise` reads). Raise `PluginNoData` when it knows nothing, anything else on
        failure."""
        ...

    def normalise(self, indicator: Indicator, answer: Any) -> Evidence:
        """Turn the answer into a score, fields and evidence (no I/O)."""
        ...

    async def health_check(
        self, *, base_url: str, credential: str | None, http: PluginHttp
    ) -> str | None:
        """None when the provider answers as expected, else what is wrong."""
        ...


class PluginNoData(Exception):
    """Raised by `fetch`: the provider has no data on the indicator."""


class PluginUnavailable(ValueError):
    """No installed plugin of that name, or it does not implement the interface."""


def installed_plugins() -> dict[str, Any]:
    """Entry points of the `assay.providers` group, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_plugin(name: str) -> ProviderPlugin:
    found = installed_plugins().get(name)
    if found is None:
        known = ", ".join(sorted(installed_plugins())) or "none is installed"
        msg = f"no provider plugin {name!r} is installed ({known})"
        raise PluginUnavailable(msg)
    try:
        plugin = found.load()()
    except Exception as exc:  # noqa: BLE001 - any failure of third-party code to load
        msg = f"the provider plugin {name!r} does not load: {type(exc).__name__}"
        raise PluginUnavailable(msg) from None
    if not isinstance(plugin, ProviderPlugin) or not plugin.supports:
        msg = f"the provider plugin {name!r} does not implement the provider interface"
        raise PluginUnavailable(msg)
    return plugin
