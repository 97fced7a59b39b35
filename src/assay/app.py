"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from assay import __version__
from assay.accounts.routes import email_router as account_email_router
from assay.accounts.routes import me_router
from assay.api_keys.routes import router as api_keys_router
from assay.audit.reads import ReadAudit
from assay.audit_trail.forwarding import build_forwarder
from assay.audit_trail.routes import router as audit_router
from assay.audit_trail.sealing import audit_chainer
from assay.audit_trail.service import build_sealer
from assay.auth.deps import IdentityContext, authenticate
from assay.auth.openapi import document_security, operation_id
from assay.auth.public_routes import is_public
from assay.auth.routes import auth_router
from assay.console.serving import install_console
from assay.core.cache import create_cache, create_prediction_cache
from assay.core.config_check import production_problems
from assay.core.db import Database
from assay.core.logging import configure_logging, get_logger
from assay.core.memory import (
    freeze_long_lived_objects,
    set_heap_freezing,
    thaw_long_lived_objects,
)
from assay.core.metrics import (
    POOL_COLLECTOR,
    MetricsListener,
    mark_worker_stopped,
    multiprocess_directory,
    share_pool_state,
    start_metrics_listener,
)
from assay.core.migrations import prepare_database
from assay.core.net import parse_networks
from assay.core.routes import iter_api_routes
from assay.core.secrets_store import with_generated_secrets
from assay.core.tracing import (
    Tracing,
    integration_problems,
    start_error_tracking,
    start_tracing,
    stop_error_tracking,
)
from assay.http.problems import install_error_handlers
from assay.http.request_context import RequestContextMiddleware
from assay.http.stack import install_http_protection
from assay.jobs.queue import broker_problems
from assay.jobs.routes import router as jobs_router
from assay.jobs.service import JobService
from assay.keys.freshness import KeyringFreshness
from assay.keys.reencrypt import KeyMaintenance, Reencryptor
from assay.keys.routes import router as keys_router
from assay.lookups.bulk import LookupBulkKind
from assay.lookups.routes import router as lookups_router
from assay.lookups.service import LookupService
from assay.oip.routes import router as oip_router
from assay.oip.service import InferenceService
from assay.orgs.admin_routes import router as admin_router
from assay.orgs.invitation_routes import invitations_router, joining_router
from assay.orgs.quotas import DatabaseQuotaOverrides
from assay.orgs.routes import router as org_router
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.predictions.fast_path import install_predict_fast_path
from assay.predictions.routes import records_router as predictions_router
from assay.predictions.routes import router as predict_router
from assay.predictions.service import PredictService
from assay.providers.calls import ProviderCaller, create_quota_storage
from assay.providers.routes import router as providers_router
from assay.providers.service import ProviderRegistry
from assay.registry.routes import keys_router as publisher_keys_router
from assay.registry.routes import router as models_router
from assay.registry.service import ModelRegistry
from assay.scans.kind import ScanKind
from assay.scans.planning import probe_set_problems
from assay.scans.routes import router as scans_router
from assay.scans.service import ScanService
from assay.settings import Settings, load_settings
from assay.sso.oidc import OidcClient
from assay.sso.routes import router as sso_router
from assay.system.routes import info_router as system_info_router
from assay.system.routes import metrics_router
from assay.system.routes import router as system_router
from assay.system.service import SystemService
from assay.targets.client import TargetClient
from assay.targets.routes import router as targets_router
from assay.targets.service import TargetRegistry
from assay.watchlists.routes import router as watchlist_router
from assay.watchlists.service import watchlist_checker
from assay.webhooks.dispatch import Dispatcher
from assay.webhooks.routes import router as webhooks_router
from assay.webhooks.service import WebhookRuntime

log = get_logger("assay.app")


class ConfigurationError(RuntimeError):
    """The configuration is unfit to start; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _start_metrics(settings: Settings) -> MetricsListener | None:
    # A worker among several does not serve the listener: `assay serve` itself does,
    # adding up every worker's metrics (see assay.server).
    if settings.metrics_port == 0 or multiprocess_directory() is not None:
        return None
    try:
        return start_metrics_listener(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        log.warning("metrics_listener_unavailable", port=settings.metrics_port, error=str(exc))
        return None


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database: Database = app.state.database
    tracing: Tracing | None = app.state.tracing
    start_error_tracking(settings)
    metrics_listener: MetricsListener | None = None
    pool_sharing: asyncio.Task[None] | None = None
    # The loops this process runs in the background, stopped in reverse order.
    loops: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    try:
        await prepare_database(database.engine, settings)
        # Before anything seals or opens a value: the data keys, from the database.
        await app.state.identity.keeper.load()
        await database.ping()
        await app.state.cache.ping()
        POOL_COLLECTOR.track(database.engine)
        metrics_listener = _start_metrics(settings)
        if multiprocess_directory() is not None:
            pool_sharing = asyncio.create_task(share_pool_state())
        await app.state.registry.start()
        app.state.predictions.start()
        app.state.audit_reads.start()
        await app.state.jobs.start()
        loops = _start_loops(app, settings, database)
        freeze_long_lived_objects(collect_first=True)
        log.info("started", version=__version__, env=settings.env.value, db=database.dialect)
        yield
    finally:
        # Each step runs even when one before it failed (the failure is logged), above
        # all the last ones: closing the database pool. Buffers (prediction records)
        # go first, while the pool is still open.
        await _shutdown_step("jobs", app.state.jobs.stop)
        # Before the chainer's last pass, so the last reads are sealed with the rest.
        await _shutdown_step("audited reads", app.state.audit_reads.stop)
        for name, stop in reversed(loops):
            await _shutdown_step(name, stop)
        await _shutdown_step("prediction records and scoring threads", app.state.predictions.stop)
        if metrics_listener is not None:
            await _shutdown_step("metrics listener", metrics_listener.stop)
        if pool_sharing is not None:
            await _shutdown_step("pool state sharing", lambda: _cancelled(pool_sharing))
        if tracing is not None:
            await _shutdown_step("tracing", tracing.shutdown)
        # Mail of committed changes is delivered before the process goes away.
        await _shutdown_step("mail", app.state.identity.mail.aclose)
        await _shutdown_step("provider quotas", app.state.providers.caller.close)
        await _shutdown_step("cache", app.state.cache.close)
        await _shutdown_step("database", database.dispose)
        await _shutdown_step("worker metrics", mark_worker_stopped)
        await _shutdown_step("error tracking", stop_error_tracking)
        thaw_long_lived_objects()
        log.info("stopped")


def _start_loops(
    app: FastAPI, settings: Settings, database: Database
) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """Start the background loops this process runs; each with its name and its stop."""
    loops: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    if settings.webhook_dispatcher_enabled:
        runtime: WebhookRuntime = app.state.webhooks
        dispatcher = Dispatcher(database.sessionmaker, settings, runtime.outbound, runtime.keyring)
        dispatcher.start()
        loops.append(("webhook dispatcher", dispatcher.stop))
    if settings.watchlist_checker_enabled:
        checker = watchlist_checker(app.state.lookups, settings)
        checker.start()
        loops.append(("watchlist checker", checker.stop))
    if settings.audit_chainer_enabled:
        chainer = audit_chainer(app.state.audit_trail, settings)
        chainer.start()
        loops.append(("audit chainer", chainer.stop))
    maintenance: KeyMaintenance = app.state.key_maintenance
    maintenance.start()
    loops.append(("key maintenance", maintenance.stop))
    return loops


async def _shutdown_step(name: str, action: Callable[[], object]) -> None:
    try:
        result = action()
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("shutdown_step_failed", step=name)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class UnprotectedRouteError(RuntimeError):
    pass


def _requires_principal(dependant: Any) -> bool:
    return any(
        dep.call is authenticate or _requires_principal(dep) for dep in dependant.dependencies
    )


def assert_deny_by_default(app: FastAPI) -> None:
    """Refuse to build an app with a route that is neither public nor authenticated."""
    unprotected = [
        f"{method} {route.path}"
        for route in iter_api_routes(app)
        for method in sorted(route.methods or ())
        if not is_public(method, route.path) and not _requires_principal(route.dependant)
    ]
    if unprotected:
        msg = "routes without a principal requirement: " + ", ".join(unprotected)
        raise UnprotectedRouteError(msg)


def _build_scoring(app: FastAPI, settings: Settings) -> None:
    """The scoring services, each built once and reached through its package's deps."""
    database: Database = app.state.database
    registry = ModelRegistry.build(settings, database.sessionmaker)
    predictions = PredictService(
        settings,
        database.sessionmaker,
        registry,
        app.state.identity.keyring,
        create_prediction_cache(settings, app.state.cache),
    )
    # Alias moves, deletions and health changes reach the predict path's resolutions.
    registry.subscribe(predictions.forget)
    app.state.registry = registry
    app.state.predictions = predictions
    app.state.inference = InferenceService(predictions, registry)
    app.state.jobs = JobService(settings, database.sessionmaker, predictions)
    app.state.system = SystemService(settings, database, app.state.cache, registry)
    # Provider quotas and scan targets' rate limits share one storage (closed with the
    # provider caller).
    quota_storage = create_quota_storage(settings)
    app.state.providers = ProviderRegistry(
        settings,
        app.state.identity.keyring,
        ProviderCaller(settings, app.state.cache, quota_storage, app.state.webhooks.outbound),
    )
    app.state.lookups = LookupService(
        settings, database.sessionmaker, app.state.providers, predictions
    )
    # Bulk lookups run as jobs, in this process or in `assay worker`s (built from here too).
    app.state.jobs.register_kind(LookupBulkKind(app.state.lookups))
    app.state.targets = TargetRegistry(
        app.state.identity.keyring,
        TargetClient(settings, app.state.cache, quota_storage, app.state.webhooks.outbound),
    )
    app.state.scans = ScanService(
        settings,
        database.sessionmaker,
        app.state.jobs,
        app.state.targets,
        predictions,
        app.state.identity.keyring,
    )
    # Scans are jobs too: they run wherever jobs run.
    app.state.jobs.register_kind(ScanKind(app.state.scans))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build an Assay application; nothing connects until its lifespan starts."""
    settings = settings or load_settings()
    problems = production_problems(settings) if settings.is_production else []
    # In any environment: a setting that needs an extra which is not installed.
    problems.extend(integration_problems(settings))
    problems.extend(broker_problems(settings))
    problems.extend(probe_set_problems(settings.redteam_probe_directories))
    if problems:
        raise ConfigurationError(problems)
    settings = with_generated_secrets(settings)
    configure_logging(settings)

    docs = settings.effective_docs_enabled
    app = FastAPI(
        title="Assay",
        version=__version__,
        summary="Secure, audited, multi-tenant scoring API.",
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        lifespan=_lifespan,
        debug=False,  # tracebacks never reach clients, even in debug mode
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.database = Database(settings)
    app.state.cache = create_cache(settings)
    app.state.tracing = None
    app.state.identity = IdentityContext.build(settings, app.state.database, app.state.cache)
    keeper = app.state.identity.keeper
    app.state.key_maintenance = KeyMaintenance(
        keeper,
        Reencryptor(settings, keeper, app.state.database.sessionmaker)
        if settings.keys_reencrypt_in_process
        else None,
    )
    # Per-organisation scoring quotas, read by the rate limiter on every scoring request.
    app.state.quotas = DatabaseQuotaOverrides(settings, app.state.database.sessionmaker)
    app.state.oidc = OidcClient(settings)
    app.state.webhooks = WebhookRuntime(
        settings,
        app.state.identity.keyring,
        OutboundClient(OutboundPolicy.from_settings(settings)),
    )
    _build_scoring(app, settings)
    app.state.audit_trail = build_sealer(settings, app.state.database.sessionmaker)
    app.state.audit_trail.forwarder = build_forwarder(settings, app.state.webhooks.outbound)
    app.state.audit_reads = ReadAudit(settings, app.state.database.sessionmaker)
    install_error_handlers(app)
    # Before any router: it adds the default rate limit to every route included after it.
    install_http_protection(app, settings, quotas=app.state.quotas)
    # FastAPI tries the included routers in this order on every request, so the scoring
    # routers (the hot path) come first; the paths do not overlap, so order is free.
    for router in (
        models_router,
        predict_router,
        oip_router,
        system_router,
        metrics_router,
        auth_router,
        me_router,
        account_email_router,
        org_router,
        api_keys_router,
        invitations_router,
        joining_router,
        admin_router,
        keys_router,
        sso_router,
        predictions_router,
        jobs_router,
        system_info_router,
        publisher_keys_router,
        webhooks_router,
        providers_router,
        lookups_router,
        watchlist_router,
        targets_router,
        scans_router,
        audit_router,
    ):
        app.include_router(router)
    assert_deny_by_default(app)
    document_security(app)
    if settings.console_enabled:
        install_console(app)
    if settings.predict_fast_path:
        install_predict_fast_path(app)

    if settings.otel_enabled:
        app.state.tracing = start_tracing(settings, app, app.state.database.engine)
    # Outside the predict fast path: every request, scoring included, sees a keyring
    # no older than key_refresh_seconds.
    app.add_middleware(KeyringFreshness, keeper=lambda: app.state.identity.keeper)
    # Added last, so it is outermost: it sees every response, errors included.
    app.add_middleware(
        RequestContextMiddleware, trusted_proxies=parse_networks(settings.trusted_proxies)
    )
    return app


def app_from_environment() -> FastAPI:
    """Factory used by `assay serve` workers: settings from the environment."""
    # A serving worker keeps the collector off its long-lived objects (see core.memory).
    set_heap_freezing(True)
    return create_app(load_settings())
