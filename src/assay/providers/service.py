"""An organisation's providers: register a definition, set its credential, list them with
their breaker state, and hand the lookup service the ones to call.

Definitions are checked and compiled when registered (a 422 names every problem) and
compiled again, once per change, in each process that calls them. Credentials are
write-only: sealed under the keyring, never returned, never logged. Registering,
deleting and setting a credential are security events.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.breaker import BreakerView
from assay.core.cache import InProcessCache
from assay.core.crypto import DecryptionError, Keyring
from assay.core.db_types import utcnow
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scope_statement, scoped
from assay.engine.documents import load_document
from assay.http.rate_limit_storage import InProcessRateLimitStorage
from assay.outbound.errors import DestinationRefused, OutboundFailed
from assay.outbound.service import OutboundClient, OutboundPolicy, parse_destination_url
from assay.providers.calls import ConfiguredProvider, ProviderCaller
from assay.providers.compiled import (
    CompiledProvider,
    InvalidProviderDefinition,
    compile_provider,
)
from assay.providers.errors import InvalidProvider, ProviderNotFound
from assay.providers.models import ConfiguredProviderRow, credential_aad
from assay.providers.plugins import PluginHttp
from assay.providers.results import ProviderResult, ProviderStatus
from assay.settings import Settings

__all__ = [
    "BUILTIN_NAMES",
    "ConfiguredProvider",
    "ProviderCaller",
    "ProviderOverview",
    "ProviderRegistry",
    "ProviderResult",
    "ProviderStatus",
    "builtin_definition",
]

log = get_logger("assay.providers")

BUILTIN_NAMES = ("virustotal", "abuseipdb", "urlhaus")


def builtin_definition(name: str) -> dict[str, Any]:
    """A definition shipped with Assay (VirusTotal v3, AbuseIPDB v2, URLhaus)."""
    if name not in BUILTIN_NAMES:
        raise ProviderNotFound(
            f"No built-in provider {name!r}; there are {', '.join(BUILTIN_NAMES)}."
        )
    text = resources.files("assay.providers").joinpath("builtin", f"{name}.yaml").read_text()
    document: dict[str, Any] = load_document(text)
    return document


_aad = credential_aad  # the recipe lives with the table (assay.core.sealed)


@dataclass(frozen=True, slots=True)
class ProviderOverview:
    row: ConfiguredProviderRow
    provider: CompiledProvider
    breaker: BreakerView
    base_url: str


class ProviderRegistry:
    """Compiles each organisation's definitions once per change, per process."""

    def __init__(self, settings: Settings, keyring: Keyring, caller: ProviderCaller) -> None:
        self.settings = settings
        self.keyring = keyring
        self.caller = caller
        self._compiled: dict[tuple[uuid.UUID, Any], CompiledProvider] = {}

    @classmethod
    def for_registration(cls, settings: Settings, keyring: Keyring) -> ProviderRegistry:
        """A registry for a process that registers providers but never calls them (the
        CLI, the demo): its caller is here only for the URL rules it carries."""
        caller = ProviderCaller(
            settings,
            InProcessCache(16),
            InProcessRateLimitStorage(),
            OutboundClient(OutboundPolicy.from_settings(settings)),
        )
        return cls(settings, keyring, caller)

    def compiled(self, row: ConfiguredProviderRow) -> CompiledProvider:
        key = (row.id, row.updated_at)
        hit = self._compiled.get(key)
        if hit is None:
            if len(self._compiled) > 10_000:
                self._compiled.clear()
            hit = compile_provider(row.definition)
            self._compiled[key] = hit
        return hit

    def base_url(self, provider: CompiledProvider) -> str:
        return self.settings.provider_base_urls.get(provider.name, provider.definition.base_url)

    def _check(self, document: Mapping[str, Any], name: str) -> CompiledProvider:
        try:
            provider = compile_provider(document)
        except InvalidProviderDefinition as exc:
            raise InvalidProvider(
                "The provider definition is not valid.", errors=exc.problems
            ) from None
        if provider.name != name:
            raise InvalidProvider(
                "The definition's name differs from the one in the URL.",
                errors=[{"field": "name", "code": "mismatch", "message": f"expected {name!r}"}],
            )
        try:
            # The shape here; the address is checked (and pinned) at every call.
            parse_destination_url(self.base_url(provider), allow_http=self.caller.allow_http)
        except DestinationRefused as exc:
            raise InvalidProvider(
                f"The base URL cannot be used: {exc.detail}.",
                errors=[{"field": "base_url", "code": exc.reason, "message": exc.detail}],
            ) from None
        return provider

    async def overview(self, db: AsyncSession, principal: OrgPrincipal) -> list[ProviderOverview]:
        statement = scoped(principal, ConfiguredProviderRow).order_by(ConfiguredProviderRow.name)
        return [await self._overview(principal, row) for row in (await db.scalars(statement)).all()]

    async def overview_of(
        self, db: AsyncSession, principal: OrgPrincipal, name: str
    ) -> ProviderOverview:
        return await self._overview(principal, await self.get(db, principal, name))

    async def _overview(
        self, principal: OrgPrincipal, row: ConfiguredProviderRow
    ) -> ProviderOverview:
        provider = self.compiled(row)
        breaker = await self.caller.breaker.view(principal.org_id, row.name)
        return ProviderOverview(row, provider, breaker, self.base_url(provider))

    async def get(
        self, db: AsyncSession, principal: OrgPrincipal, name: str
    ) -> ConfiguredProviderRow:
        row = await db.scalar(
            scoped(principal, ConfiguredProviderRow).where(ConfiguredProviderRow.name == name)
        )
        if row is None:
            raise ProviderNotFound(f"No provider {name!r} in this organisation.")
        return row

    async def save(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        name: str,
        document: Mapping[str, Any],
        *,
        enabled: bool = True,
        meta: RequestMeta,
    ) -> ConfiguredProviderRow:
        """Register or replace the provider `name`; its credential is kept."""
        self._check(document, name)
        row = await db.scalar(
            scoped(principal, ConfiguredProviderRow).where(ConfiguredProviderRow.name == name)
        )
        if row is None:
            row = ConfiguredProviderRow(
                id=uuid.uuid4(),
                org_id=principal.org_id,
                name=name,
                created_by=principal.actor_id,
            )
            db.add(row)
        row.definition = dict(document)
        row.enabled = enabled
        row.updated_at = utcnow()
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.PROVIDER_SAVED,
            actor=principal,
            target_kind="provider",
            target_id=row.id,
            details={"name": name, "enabled": enabled},
        )
        return row

    async def set_credential(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        name: str,
        credential: str | None,
        *,
        meta: RequestMeta,
    ) -> None:
        row = await self.get(db, principal, name)
        row.credential_encrypted = (
            None
            if credential is None
            else self.keyring.encrypt(credential.encode(), _aad(row.org_id, row.id, row.name))
        )
        row.credential_updated_at = utcnow()
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.PROVIDER_CREDENTIAL_SET,
            actor=principal,
            target_kind="provider",
            target_id=row.id,
            details={"name": name, "cleared": credential is None},
        )

    async def delete(
        self, db: AsyncSession, principal: OrgPrincipal, name: str, *, meta: RequestMeta
    ) -> None:
        row = await self.get(db, principal, name)
        await db.execute(
            scope_statement(
                principal,
                delete(ConfiguredProviderRow).where(ConfiguredProviderRow.id == row.id),
                ConfiguredProviderRow,
            )
        )
        record_event(
            db,
            meta,
            action=SecurityAction.PROVIDER_DELETED,
            actor=principal,
            target_kind="provider",
            target_id=row.id,
            details={"name": name},
        )

    async def health(
        self, db: AsyncSession, principal: OrgPrincipal, name: str
    ) -> tuple[bool, str]:
        """Whether the provider answers now, and what is wrong if not: a plugin's own
        check, or for a declared provider an answer (any status below 500) at its base
        URL. Through the outbound guard like every call; the breaker is not consulted."""
        ready = self._ready(await self.get(db, principal, name))
        client = self.caller.outbound
        try:
            if ready.provider.plugin is not None:
                problem = await ready.provider.plugin.health_check(
                    base_url=ready.base_url, credential=ready.credential, http=PluginHttp(client)
                )
                return problem is None, problem or "healthy"
            response = await client.request("GET", ready.base_url)
        except DestinationRefused as exc:
            return False, f"its address is refused: {exc.detail}"
        except OutboundFailed as exc:
            return False, f"{exc.reason}: {exc.detail}"
        except Exception as exc:  # noqa: BLE001 - a plugin's check failing is an answer
            return False, f"the plugin's check failed: {type(exc).__name__}"
        if response.status_code >= 500:
            return False, f"it answered {response.status_code}"
        return True, f"it answered {response.status_code}"

    async def configured(
        self, db: AsyncSession, principal: OrgPrincipal, names: Sequence[str] | None = None
    ) -> list[ConfiguredProvider]:
        """The organisation's enabled providers (those named, if `names`), ready to call."""
        statement = scoped(principal, ConfiguredProviderRow).where(
            ConfiguredProviderRow.enabled.is_(True)
        )
        rows = (await db.scalars(statement.order_by(ConfiguredProviderRow.name))).all()
        if names is not None:
            known = {row.name for row in rows}
            unknown = [name for name in names if name not in known]
            if unknown:
                raise InvalidProvider(
                    "Unknown or disabled providers.",
                    errors=[
                        {"field": "providers", "code": "unknown_provider", "message": name}
                        for name in unknown
                    ],
                )
            rows = [row for row in rows if row.name in set(names)]
        return [self._ready(row) for row in rows]

    def _ready(self, row: ConfiguredProviderRow) -> ConfiguredProvider:
        provider = self.compiled(row)
        credential = None
        if row.credential_encrypted is not None:
            try:
                credential = self.keyring.decrypt(
                    row.credential_encrypted, _aad(row.org_id, row.id, row.name)
                ).decode()
            except DecryptionError:
                log.warning("provider_credential_unreadable", provider=row.name)
        return ConfiguredProvider(row.org_id, provider, credential, self.base_url(provider))
