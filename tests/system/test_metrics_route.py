"""GET /metrics spans every organisation: operators only (issue 17, defect 2).

An organisation's owner or admin holds system:read, and used to read counters such as
assay_security_events_total{action="org.created"} that told them other organisations
exist. Now /metrics needs a platform administrator or the operator's scrape token, and
organisations see their own usage at GET /v1/system/usage.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from assay.app import create_app
from assay.settings import Settings
from tests.conftest import new_secret
from tests.support.identity import MakeMember, bearer, login, platform_admin_token


async def test_an_organisation_owner_cannot_read_the_platform_metrics(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    owner = await make_member(role="owner")
    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    owner_token = (await login(client, owner))["access_token"]
    viewer_token = (await login(client, viewer))["access_token"]
    assert (await client.get("/metrics")).status_code == 401
    for token in (owner_token, viewer_token):
        refused = await client.get("/metrics", headers=bearer(token))
        assert refused.status_code == 403, refused.text
        assert "GET /v1/system/usage" in refused.json()["detail"]


async def test_a_platform_administrator_reads_the_metrics(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    token = await platform_admin_token(client, make_member)
    response = await client.get("/metrics", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "assay_http_requests_total" in response.text
    assert "assay_build_info" in response.text


@pytest.fixture
async def scraped_app(
    settings_factory: Callable[..., Settings], database_url: str
) -> tuple[FastAPI, str]:
    token = new_secret()
    return create_app(settings_factory(database_url=database_url, metrics_token=token)), token


async def test_the_scrape_token_reads_the_metrics_and_nothing_else(
    scraped_app: tuple[FastAPI, str],
) -> None:
    app, token = scraped_app
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        scraped = await client.get("/metrics", headers=bearer(token))
        assert scraped.status_code == 200, scraped.text
        assert "assay_http_requests_total" in scraped.text
        for method, path in (
            ("GET", "/v1/me"),
            ("GET", "/v1/system/info"),
            ("GET", "/v1/models"),
            ("GET", "/v1/admin/orgs"),
            ("POST", "/v1/auth/logout"),
        ):
            refused = await client.request(method, path, headers=bearer(token))
            assert refused.status_code == 403, (path, refused.text)
        wrong = await client.get("/metrics", headers=bearer(new_secret()))
        assert wrong.status_code == 401
