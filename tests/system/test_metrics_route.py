from __future__ import annotations

import httpx

from tests.support.identity import MakeMember, bearer, login


async def test_metrics_on_the_main_port_need_system_read(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    admin = await make_member(role="admin")
    viewer = await make_member(role="viewer", org_slug=admin.org_slug)
    admin_token = (await login(client, admin))["access_token"]
    viewer_token = (await login(client, viewer))["access_token"]
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=bearer(viewer_token))).status_code == 403
    response = await client.get("/metrics", headers=bearer(admin_token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "assay_http_requests_total" in response.text
    assert "assay_build_info" in response.text
