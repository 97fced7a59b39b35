"""Rate limits and quotas on every route (SECURITY.md items 19 and 20).

Tests taking `limited_client` run twice: with the in-process backend and with Redis.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import time_machine
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import REGISTRY

from assay.app import create_app
from assay.core.errors import RateLimited
from assay.http.rate_limit import (
    InMemoryQuotaOverrides,
    RateClass,
    RateLimiter,
    account_key,
    address_key,
)
from assay.http.route_charge import declared_rate_classes
from assay.http.route_markers import dependency_calls
from assay.settings import Settings

from .conftest import ClientFactory, ProbeClient, add_user, build_probe_app, sign_in

pytestmark = pytest.mark.usefixtures("steady_rate_window")


async def spend(http: httpx.AsyncClient, path: str, times: int, **kwargs: object) -> list[int]:
    return [(await http.get(path, **kwargs)).status_code for _ in range(times)]  # type: ignore[arg-type]


# Organisation ids are UUIDs (overrides are validated as such).
ORG_1 = "6f0c2a8e-8d3b-4f5e-9a41-3b2d1c0e9f01"
ORG_2 = "6f0c2a8e-8d3b-4f5e-9a41-3b2d1c0e9f02"
BIG_ORG = "6f0c2a8e-8d3b-4f5e-9a41-3b2d1c0e9f03"
SMALL_ORG = "6f0c2a8e-8d3b-4f5e-9a41-3b2d1c0e9f04"


def metric(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for the limiter's storage: in process, or a namespace of its own in Redis."""
    if request.param == "memory":
        return {}
    return {
        "redis_url": request.getfixturevalue("redis_url"),
        "rate_limit_namespace": request.getfixturevalue("redis_namespace"),
    }


@pytest.fixture
def limited_client(make_client: ClientFactory, backend: dict[str, str]) -> ClientFactory:
    """`make_client` on each rate-limit backend."""

    def build(**overrides: Any) -> AbstractAsyncContextManager[ProbeClient]:
        return make_client(**backend, **overrides)

    return build


# --- every route has a limit -------------------------------------------------------------


def test_every_api_route_is_rate_limited(
    settings_factory: Callable[..., Settings],
) -> None:
    app = build_probe_app(settings_factory())
    unlimited = [
        f"{sorted(context.methods or ())} {context.path}"
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and not declared_rate_classes(list(dependency_calls(context.dependant)))
    ]
    assert unlimited == []


def test_protection_must_be_installed_before_routes(
    settings_factory: Callable[..., Settings],
) -> None:
    from assay.http.stack import install_http_protection

    app = create_app(settings_factory())
    with pytest.raises(RuntimeError, match="before routers are included"):
        install_http_protection(app, settings_factory())


# --- the default class -------------------------------------------------------------------


async def test_default_limit_refuses_the_request_after_the_budget(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(rate_limit_default="3/minute") as http:
        statuses = await spend(http, "/probe/ok", 4)
        refused = await http.get("/probe/ok")
    assert statuses == [200, 200, 200, 429]
    body = refused.json()
    assert body["type"] == "urn:assay:problem:rate-limited"
    assert body["status"] == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"


async def test_successful_responses_report_the_remaining_budget(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(rate_limit_default="10/minute") as http:
        remaining = [
            int((await http.get("/probe/ok")).headers["ratelimit-remaining"]) for _ in range(3)
        ]
        reset = int((await http.get("/probe/ok")).headers["ratelimit-reset"])
    assert remaining == [9, 8, 7]
    assert 0 < reset <= 120


async def test_not_found_and_refused_bodies_count_against_the_default_budget(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(rate_limit_default="3/minute") as http:
        missing = await http.get("/nowhere")
        wrong_method = await http.delete("/livez")
        malformed = await http.post(
            "/probe/json", content=b"{", headers={"content-type": "application/json"}
        )
        refused = await http.get("/nowhere")
    assert [missing.status_code, wrong_method.status_code, malformed.status_code] == [404, 405, 400]
    assert refused.status_code == 429


async def test_the_budget_comes_back_after_the_window(make_client: ClientFactory) -> None:
    with time_machine.travel("2026-11-23 12:00:00+00:00", tick=False) as clock:
        async with make_client(rate_limit_default="2/minute") as http:
            assert await spend(http, "/probe/ok", 3) == [200, 200, 429]
            clock.shift(121)
            assert await spend(http, "/probe/ok", 1) == [200]


async def test_a_principal_is_limited_on_its_own_budget(limited_client: ClientFactory) -> None:
    async with limited_client(rate_limit_management="2/minute") as http:
        alice = {"x-test-principal": "alice"}
        bob = {"x-test-principal": "bob"}
        assert await spend(http, "/probe/manage", 3, headers=alice) == [200, 200, 429]
        # Same address, another principal: a budget of its own.
        assert await spend(http, "/probe/manage", 2, headers=bob) == [200, 200]


async def test_signed_in_users_on_one_address_have_budgets_of_their_own(
    limited_client: ClientFactory,
) -> None:
    """Routes with no class of their own are charged after authentication, per principal:
    colleagues behind one NAT do not share a budget, nor with anonymous callers."""
    async with limited_client(rate_limit_default="3/minute") as http:
        alice = {"authorization": "Bearer " + await sign_in(http, *await add_user(http.app))}
        bob = {"authorization": "Bearer " + await sign_in(http, *await add_user(http.app))}
        alice_calls = [await http.get("/v1/me", headers=alice) for _ in range(4)]
        bob_first = await http.get("/v1/me", headers=bob)
        anonymous = await http.get("/v1/me")
    assert [r.status_code for r in alice_calls] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in alice_calls] == ["2", "1", "0", "0"]
    assert alice_calls[0].headers["ratelimit-limit"] == "3"
    assert bob_first.status_code == 200
    assert bob_first.headers["ratelimit-remaining"] == "2"
    # Failed authentication is charged to the address, on its own budget.
    assert anonymous.status_code == 401
    assert anonymous.headers["ratelimit-remaining"] == "2"


async def test_a_refused_request_spends_none_of_its_other_limits(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(
        rate_limit_scoring_per_key="3/minute", rate_limit_scoring_per_org="2/minute"
    ) as http:
        in_one = {"x-test-key": "key-a", "x-test-org": ORG_1}
        assert await spend(http, "/probe/score", 3, headers=in_one) == [200, 200, 429]
        # The organisation's quota refused the third request. The key (now used for
        # another organisation) has one request left of its own three: the refused one
        # was not charged to it.
        in_two = {"x-test-key": "key-a", "x-test-org": ORG_2}
        assert await spend(http, "/probe/score", 2, headers=in_two) == [200, 429]


async def test_an_hourly_refusal_does_not_spend_the_minute_budget(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(rate_limit_management="3/minute;2/hour") as http:
        alice = {"x-test-principal": "alice"}
        assert await spend(http, "/probe/manage", 3, headers=alice) == [200, 200, 429]
        refused = await http.get("/probe/manage", headers=alice)
    # Still the hourly limit refusing: the minute limit (3) saw only the two requests
    # that ran, so it has one left and does not refuse first.
    assert refused.status_code == 429
    assert refused.headers["ratelimit-limit"] == "2"


async def test_probes_are_never_limited(limited_client: ClientFactory) -> None:
    async with limited_client(rate_limit_default="1/minute") as http:
        probes = [
            await http.request(method, path)
            for path in ("/livez", "/readyz", "/v2/health/live", "/v2/health/ready")
            for method in ("GET", "GET", "HEAD")
        ]
        first = await http.get("/probe/ok")
        second = await http.get("/probe/ok")
    assert [r.status_code for r in probes] == [200] * len(probes)
    assert not any("ratelimit-limit" in r.headers for r in probes)
    # The probes spent nothing of the address's default budget.
    assert (first.status_code, second.status_code) == (200, 429)


# --- client addresses and proxies ----------------------------------------------------------


async def test_a_spoofed_x_forwarded_for_does_not_change_the_key(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(rate_limit_default="2/minute") as http:
        statuses = [
            (
                await http.get("/probe/ok", headers={"x-forwarded-for": f"198.51.100.{n}"})
            ).status_code
            for n in range(3)
        ]
    assert statuses == [200, 200, 429]


async def test_a_trusted_proxy_keys_each_client_separately(limited_client: ClientFactory) -> None:
    async with limited_client(
        rate_limit_default="2/minute", trusted_proxies=["10.0.0.0/8"], client=("10.0.0.5", 80)
    ) as http:
        first = await spend(http, "/probe/ok", 3, headers={"x-forwarded-for": "203.0.113.1"})
        second = await spend(http, "/probe/ok", 2, headers={"x-forwarded-for": "203.0.113.2"})
        # A client prepending its own hop still lands on its real address's budget.
        chained = await http.get("/probe/ok", headers={"x-forwarded-for": "1.2.3.4, 203.0.113.1"})
    assert first == [200, 200, 429]
    assert second == [200, 200]
    assert chained.status_code == 429


def test_ipv6_clients_are_keyed_by_their_slash_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("192.0.2.1") != address_key("192.0.2.2")
    assert address_key(None) == "a:unknown"


# --- classes -----------------------------------------------------------------------------


async def test_auth_routes_are_limited_per_address(limited_client: ClientFactory) -> None:
    async with limited_client(rate_limit_auth_per_address="2/minute") as http:
        statuses = [
            (await http.post("/probe/login", json={"account": f"user{n}@example.org"})).status_code
            for n in range(3)
        ]
    assert statuses == [200, 200, 429]


async def test_auth_account_limit_survives_rotating_addresses(
    settings_factory: Callable[..., Settings], backend: dict[str, str]
) -> None:
    app = build_probe_app(settings_factory(rate_limit_auth_per_account="2/minute", **backend))
    statuses = []
    async with app.router.lifespan_context(app):
        for n in range(3):
            transport = httpx.ASGITransport(app=app, client=(f"192.0.2.{n}", 1000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.post("/probe/login", json={"account": " Victim@Example.org"})
                statuses.append(response.status_code)
    assert statuses == [200, 200, 429]


def test_account_keys_are_canonical_and_do_not_contain_the_account() -> None:
    assert account_key("Victim@Example.org ") == account_key("victim@example.org")
    assert "victim" not in account_key("victim@example.org")


async def test_a_route_with_its_own_class_is_not_charged_the_default(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(
        rate_limit_default="1/minute", rate_limit_management="5/minute"
    ) as http:
        statuses = await spend(http, "/probe/manage", 3, headers={"x-test-principal": "alice"})
        budget = (await http.get("/probe/manage", headers={"x-test-principal": "alice"})).headers
    assert statuses == [200, 200, 200]
    assert budget["ratelimit-limit"] == "5"


async def test_scoring_is_limited_per_key(limited_client: ClientFactory) -> None:
    async with limited_client(rate_limit_scoring_per_key="2/minute") as http:
        key_a = {"x-test-key": "key-a", "x-test-principal": "svc", "x-test-org": ORG_1}
        key_b = {"x-test-key": "key-b", "x-test-principal": "svc", "x-test-org": ORG_1}
        assert await spend(http, "/probe/score", 3, headers=key_a) == [200, 200, 429]
        assert await spend(http, "/probe/score", 1, headers=key_b) == [200]


async def test_scoring_quota_is_shared_by_every_key_of_an_organisation(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(rate_limit_scoring_per_org="3/minute") as http:
        statuses = [
            (
                await http.get(
                    "/probe/score", headers={"x-test-key": f"key-{n}", "x-test-org": ORG_1}
                )
            ).status_code
            for n in range(4)
        ]
        other_org = await http.get(
            "/probe/score", headers={"x-test-key": "key-9", "x-test-org": ORG_2}
        )
    assert statuses == [200, 200, 200, 429]
    assert other_org.status_code == 200


async def test_an_operator_override_replaces_one_organisations_quota(
    limited_client: ClientFactory,
) -> None:
    async with limited_client(
        rate_limit_scoring_per_org="2/minute",
        rate_limit_org_overrides={BIG_ORG: "5/minute"},
    ) as http:
        big = [
            (
                await http.get(
                    "/probe/score", headers={"x-test-key": f"k{n}", "x-test-org": BIG_ORG}
                )
            ).status_code
            for n in range(6)
        ]
        small = [
            (
                await http.get(
                    "/probe/score", headers={"x-test-key": f"s{n}", "x-test-org": SMALL_ORG}
                )
            ).status_code
            for n in range(3)
        ]
    assert big == [200] * 5 + [429]
    assert small == [200, 200, 429]


async def test_in_memory_quota_overrides_can_be_changed_while_running(
    settings_factory: Callable[..., Settings],
) -> None:
    """The limiter reads overrides through `QuotaOverrides` on every scoring request; the
    in-process implementation (the app's is database-backed, tested with identity)."""
    quotas = InMemoryQuotaOverrides()
    limiter = RateLimiter(settings_factory(rate_limit_scoring_per_org="1/minute"), quotas)

    async def score() -> int:
        scope: dict[str, Any] = {"state": {"api_key_id": "k", "org_id": ORG_1}}
        try:
            await limiter.enforce(scope, RateClass.SCORING)
        except RateLimited:
            return 429
        return 200

    try:
        assert [await score(), await score()] == [200, 429]
        quotas.set_quota(ORG_1, "100/minute")
        assert await quotas.quota_for(ORG_1) == "100/minute"
        assert await score() == 200
        quotas.set_quota(ORG_1, None)
        assert await quotas.quota_for(ORG_1) is None
        assert await score() == 429
        with pytest.raises(ValueError, match="granularity"):
            quotas.set_quota(ORG_1, "5 per fortnight")
    finally:
        await limiter.close()


def test_limit_settings_are_checked_at_start() -> None:
    with pytest.raises(ValueError, match="rate_limit_default"):
        Settings(rate_limit_default="lots")
    with pytest.raises(ValueError, match="rate_limit_org_overrides"):
        Settings(rate_limit_org_overrides={"org": "lots"})
    with pytest.raises(ValueError, match="unknown rate-limit classes"):
        Settings(rate_limit_fail_open_classes=["everything"])


def test_limits_are_settable_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_RATE_LIMIT_DEFAULT", "5/minute")
    monkeypatch.setenv("ASSAY_RATE_LIMIT_ORG_OVERRIDES", json.dumps({ORG_1: "9/second"}))
    monkeypatch.setenv("ASSAY_RATE_LIMIT_FAIL_OPEN_CLASSES", "default,scoring")
    settings = Settings()
    assert settings.rate_limit_default == "5/minute"
    assert settings.rate_limit_org_overrides == {ORG_1: "9/second"}
    assert settings.rate_limit_fail_open_classes == ["default", "scoring"]


# --- Redis -------------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_budget_is_shared_between_app_instances(
    settings_factory: Callable[..., Settings], redis_url: str, redis_namespace: str
) -> None:
    settings = settings_factory(
        redis_url=redis_url, rate_limit_namespace=redis_namespace, rate_limit_default="4/minute"
    )
    first, second = build_probe_app(settings), build_probe_app(settings)
    statuses: list[int] = []
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        for app in (first, second, first, second, first):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                statuses.append((await http.get("/probe/ok")).status_code)
    assert statuses == [200, 200, 200, 200, 429]


@pytest.mark.redis
async def test_redis_namespaces_keep_deployments_apart(
    make_client: ClientFactory, redis_url: str, redis_namespace: str
) -> None:
    async with make_client(
        redis_url=redis_url, rate_limit_namespace=redis_namespace, rate_limit_default="1/minute"
    ) as http:
        assert await spend(http, "/probe/ok", 2) == [200, 429]
    async with make_client(
        redis_url=redis_url,
        rate_limit_namespace=redis_namespace + "b",
        rate_limit_default="1/minute",
    ) as http:
        assert await spend(http, "/probe/ok", 1) == [200]


@asynccontextmanager
async def redis_down_client(
    settings_factory: Callable[..., Settings], **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The app without its lifespan (which would refuse to start with Redis down, as the
    cache); the probe routes need neither database nor cache."""
    app = build_probe_app(settings_factory(rate_limit_redis_timeout_seconds=0.5, **overrides))
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http
    finally:
        await app.state.rate_limiter.close()
        await app.state.cache.close()


async def test_when_redis_is_down_open_classes_pass_and_auth_is_refused(
    settings_factory: Callable[..., Settings], free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"redis://127.0.0.1:{free_port}/0"
    before_open = metric(
        "assay_rate_limit_storage_errors_total", {"rate_class": "default", "decision": "open"}
    )
    before_closed = metric(
        "assay_rate_limit_storage_errors_total", {"rate_class": "auth", "decision": "closed"}
    )
    with caplog.at_level(logging.WARNING, logger="assay.ratelimit"):
        async with redis_down_client(settings_factory, redis_url=down) as http:
            passed = await http.get("/probe/ok")
            refused = await http.post("/probe/login", json={"account": "a@example.org"})
    assert passed.status_code == 200
    assert "ratelimit-remaining" not in passed.headers
    assert refused.status_code == 503
    assert refused.json()["type"] == "urn:assay:problem:dependency-unavailable"
    assert refused.headers["retry-after"] == "1"
    assert (
        metric(
            "assay_rate_limit_storage_errors_total", {"rate_class": "default", "decision": "open"}
        )
        > before_open
    )
    assert (
        metric(
            "assay_rate_limit_storage_errors_total", {"rate_class": "auth", "decision": "closed"}
        )
        > before_closed
    )
    assert "rate_limit_storage_unavailable" in caplog.text


async def test_fail_open_is_configurable_per_class(
    settings_factory: Callable[..., Settings], free_port: int
) -> None:
    down = f"redis://127.0.0.1:{free_port}/0"
    async with redis_down_client(
        settings_factory, redis_url=down, rate_limit_fail_open_classes=["auth"]
    ) as http:
        default = await http.get("/probe/ok")
        auth = await http.post("/probe/login", json={"account": "a@example.org"})
    assert default.status_code == 503
    assert auth.status_code == 200


async def test_refusals_are_counted(limited_client: ClientFactory) -> None:
    labels = {"rate_class": RateClass.DEFAULT.value}
    before = metric("assay_rate_limited_requests_total", labels)
    async with limited_client(rate_limit_default="1/minute") as http:
        await spend(http, "/probe/ok", 3)
    assert metric("assay_rate_limited_requests_total", labels) == before + 2
