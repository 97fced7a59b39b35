from __future__ import annotations

import httpx
from fastapi import FastAPI

from assay.accounts.models import User
from tests.support.identity import MakeMember, Member, login, strong_password

from ..conftest import KNOWN_SECRETS

ORIGIN = "http://127.0.0.1:8000"  # the default public URL's origin


async def _console_login(client: httpx.AsyncClient, member: Member) -> tuple[str, str]:
    response = await client.post(
        "/v1/auth/session", json={"email": member.email, "password": member.password}
    )
    assert response.status_code == 200, response.text
    set_cookie = response.headers["set-cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=strict" in set_cookie or "samesite=strict" in set_cookie.lower()
    cookie = response.cookies["assay_session"]
    KNOWN_SECRETS.add(cookie)
    return cookie, response.json()["csrf_token"]


async def test_cookie_session_reads_without_csrf_but_writes_need_it(
    client: httpx.AsyncClient, owner: Member
) -> None:
    cookie, csrf = await _console_login(client, owner)
    client.cookies.set("assay_session", cookie)
    assert (await client.get("/v1/me")).status_code == 200
    body = {"display_name": "Ada"}
    missing = await client.patch("/v1/me", json=body, headers={"origin": ORIGIN})
    assert missing.status_code == 403
    assert "CSRF token is missing" in missing.json()["detail"]
    wrong_origin = await client.patch(
        "/v1/me", json=body, headers={"origin": "https://evil.example", "x-csrf-token": csrf}
    )
    assert wrong_origin.status_code == 403
    forged = await client.patch(
        "/v1/me", json=body, headers={"origin": ORIGIN, "x-csrf-token": "0" * 64}
    )
    assert forged.status_code == 403
    ok = await client.patch("/v1/me", json=body, headers={"origin": ORIGIN, "x-csrf-token": csrf})
    assert ok.status_code == 200
    assert ok.json()["display_name"] == "Ada"


async def test_csrf_token_of_another_session_is_refused(
    client: httpx.AsyncClient, owner: Member
) -> None:
    cookie_one, _ = await _console_login(client, owner)
    _, csrf_two = await _console_login(client, owner)
    client.cookies.set("assay_session", cookie_one)
    response = await client.patch(
        "/v1/me", json={"display_name": "x"}, headers={"origin": ORIGIN, "x-csrf-token": csrf_two}
    )
    assert response.status_code == 403


async def test_each_sign_in_gets_a_new_session_id_and_logout_ends_it(
    client: httpx.AsyncClient, owner: Member
) -> None:
    first, _ = await _console_login(client, owner)
    second, csrf = await _console_login(client, owner)
    assert first != second
    client.cookies.set("assay_session", second)
    out = await client.post("/v1/auth/logout", headers={"origin": ORIGIN, "x-csrf-token": csrf})
    assert out.status_code == 204
    client.cookies.set("assay_session", second)
    assert (await client.get("/v1/me")).status_code == 401


async def test_bearer_requests_need_no_csrf_token(client: httpx.AsyncClient, owner: Member) -> None:
    token = (await login(client, owner))["access_token"]
    KNOWN_SECRETS.add(token)
    response = await client.patch(
        "/v1/me", json={"display_name": "Grace"}, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


async def test_https_deployments_use_the_host_prefixed_secure_cookie(
    settings_factory: object, owner: Member
) -> None:
    from assay.auth.deps import cookie_name

    assert cookie_name("https://assay.example.org") == "__Host-assay_session"
    assert cookie_name("http://127.0.0.1:8000") == "assay_session"


def _write(csrf: str) -> dict[str, str]:
    return {"origin": ORIGIN, "x-csrf-token": csrf}


async def test_a_forced_password_change_replaces_the_console_session(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, owner.user_id)
        user.must_change_password = True
        await db.commit()
    restricted, csrf = await _console_login(client, owner)
    client.cookies.set("assay_session", restricted)
    assert (await client.get("/v1/me")).json()["scope"] == "password_change"
    changed = await client.post(
        "/v1/me/password",
        json={"current_password": owner.password, "new_password": strong_password()},
        headers=_write(csrf),
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.cookies["assay_session"]
    KNOWN_SECRETS.add(fresh)
    assert fresh != restricted
    assert changed.json()["scope"] == "full"
    assert "access_token" not in changed.json()  # still a console session, not tokens
    client.cookies.set("assay_session", restricted)
    assert (await client.get("/v1/me")).status_code == 401
    client.cookies.set("assay_session", fresh)
    assert (await client.get("/v1/me")).json()["scope"] == "full"
    # The new session's CSRF token works; the old one does not.
    ok = await client.patch(
        "/v1/me", json={"display_name": "Ada"}, headers=_write(changed.json()["csrf_token"])
    )
    assert ok.status_code == 200
    stale = await client.patch("/v1/me", json={"display_name": "Eve"}, headers=_write(csrf))
    assert stale.status_code == 403


async def test_switching_organisation_from_the_console_rotates_the_cookie(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    from assay.audit.service import CLI
    from assay.core.principal import PLATFORM
    from assay.orgs import service as orgs

    other = await make_member()
    assert other.org_id is not None
    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, owner.user_id)
        await orgs.add_member(db, CLI, PLATFORM, other.org_id, user, "viewer")
        await db.commit()
    first, csrf = await _console_login(client, owner)
    client.cookies.set("assay_session", first)
    switched = await client.post(
        "/v1/auth/switch-org", json={"org": other.org_slug}, headers=_write(csrf)
    )
    assert switched.status_code == 200, switched.text
    second = switched.cookies["assay_session"]
    KNOWN_SECRETS.add(second)
    assert second != first
    assert switched.json()["org_id"] == str(other.org_id)
    client.cookies.set("assay_session", first)
    assert (await client.get("/v1/me")).status_code == 401
    client.cookies.set("assay_session", second)
    assert (await client.get("/v1/me")).json()["org_id"] == str(other.org_id)


async def test_a_role_change_ends_the_members_console_sessions(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member
) -> None:
    analyst = await make_member(role="analyst", org_slug=owner.org_slug)
    cookie, _ = await _console_login(client, analyst)
    bearer_token = (await login(client, analyst))["access_token"]
    owner_token = (await login(client, owner))["access_token"]
    client.cookies.set("assay_session", cookie)
    assert (await client.get("/v1/me")).status_code == 200
    client.cookies.clear()
    promoted = await client.patch(
        f"/v1/org/members/{analyst.user_id}",
        json={"role": "maintainer"},
        headers={"authorization": f"Bearer {owner_token}"},
    )
    assert promoted.status_code == 200
    # The cookie session ends (a new one, with a new id, at the next sign-in)...
    client.cookies.set("assay_session", cookie)
    assert (await client.get("/v1/me")).status_code == 401
    client.cookies.clear()
    # ...while a token session carries on with the new role.
    me = await client.get("/v1/me", headers={"authorization": f"Bearer {bearer_token}"})
    assert "models:write" in me.json()["permissions"]
