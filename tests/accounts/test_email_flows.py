"""Password reset by mailed single-use links (SECURITY.md items 3 and 6), read from a
real SMTP server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import select

from assay.audit.models import SecurityEvent
from assay.settings import Settings
from tests.support.identity import (
    Mailbox,
    MakeMember,
    Member,
    SmtpServer,
    bearer,
    body_of,
    enrol_totp,
    known_secret,
    link_of,
    login,
    smtp_settings,
    strong_password,
)

FORGOT = "/v1/auth/password/forgot"
RESET = "/v1/auth/password/reset"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], database_url: str, smtp_server: SmtpServer
) -> Settings:
    return settings_factory(database_url=database_url, **smtp_settings(smtp_server))


async def _reset_token(client: httpx.AsyncClient, mailbox: Mailbox, member: Member) -> str:
    response = await client.post(FORGOT, json={"email": member.email})
    assert response.status_code == 202, response.text
    message = await mailbox.last_to(member.email)
    assert message["Subject"] == "Reset your Assay password"
    _, token = link_of(message)
    return token


async def _reset(client: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await client.post(RESET, json={"token": token, "new_password": password})


async def _events(app: FastAPI, action: str) -> list[SecurityEvent]:
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(select(SecurityEvent).where(SecurityEvent.action == action))
        return list(rows.scalars())


def _same_problem(first: httpx.Response, second: httpx.Response) -> bool:
    strip = ("instance", "request_id")
    return {k: v for k, v in first.json().items() if k not in strip} == {
        k: v for k, v in second.json().items() if k not in strip
    }


async def test_forgotten_password_is_reset_through_the_mailed_link(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    first = await login(client, owner)
    second = await login(client, owner)
    response = await client.post(FORGOT, json={"email": owner.email.upper()})
    assert response.status_code == 202
    message = await mailbox.last_to(owner.email)
    page, token = link_of(message)
    assert page == "http://127.0.0.1:8000/console/reset-password"
    assert len(token) >= 22  # >= 128 bits, URL-safe base64
    assert message["From"] == "Assay <assay@localhost>"
    assert "30 minutes" in body_of(message)

    new_password = strong_password()
    assert (await _reset(client, token, new_password)).status_code == 204

    # Every session ended, on the very next request.
    for tokens in (first, second):
        assert (
            await client.get("/v1/me", headers=bearer(tokens["access_token"]))
        ).status_code == 401
        refreshed = await client.post(
            "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 401
    old = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert old.status_code == 401
    await login(client, Member(owner.email, new_password, owner.user_id, None, None))

    notice = await mailbox.last_to(owner.email)
    assert notice["Subject"] == "Your Assay password was changed"
    assert "#token=" not in body_of(notice)
    requested = await _events(app, "password.reset_requested")
    done = await _events(app, "password.reset")
    assert [e.outcome for e in requested] == ["success"]
    assert [(e.outcome, e.target_id) for e in done] == [("success", str(owner.user_id))]


async def test_a_reset_link_works_only_once(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    token = await _reset_token(client, mailbox, owner)
    assert (await _reset(client, token, strong_password())).status_code == 204
    again = await _reset(client, token, strong_password())
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["title"] == "Invalid or expired link"
    unknown = await _reset(client, known_secret("x" * 43), strong_password())
    assert unknown.status_code == 400
    assert _same_problem(again, unknown)


async def test_an_expired_reset_link_is_refused(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    token = await _reset_token(client, mailbox, owner)
    with time_machine.travel(timedelta(minutes=31)):
        expired = await _reset(client, token, strong_password())
    assert expired.status_code == 400
    assert expired.json()["title"] == "Invalid or expired link"
    await login(client, owner)


async def test_a_newer_reset_link_voids_the_older_one(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    older = await _reset_token(client, mailbox, owner)
    # Past the one-mail-a-minute throttle, so a second link is issued.
    with time_machine.travel(timedelta(minutes=2)):
        newer = await _reset_token(client, mailbox, owner)
        assert newer != older
        assert (await _reset(client, older, strong_password())).status_code == 400
        assert (await _reset(client, newer, strong_password())).status_code == 204


async def test_asking_again_within_a_minute_sends_nothing_new(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    token = await _reset_token(client, mailbox, owner)
    repeat = await client.post(FORGOT, json={"email": owner.email})
    assert repeat.status_code == 202
    assert len(await mailbox.messages_to(owner.email)) == 1
    assert (await _reset(client, token, strong_password())).status_code == 204


async def test_a_password_change_voids_pending_reset_links(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    token = await _reset_token(client, mailbox, owner)
    tokens = await login(client, owner)
    changed = await client.post(
        "/v1/me/password",
        json={"current_password": owner.password, "new_password": strong_password()},
        headers=bearer(tokens["access_token"]),
    )
    assert changed.status_code == 204, changed.text
    assert (await _reset(client, token, strong_password())).status_code == 400


async def test_unknown_address_gets_the_identical_answer_and_no_mail(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    unknown = await client.post(FORGOT, json={"email": stranger})
    known = await client.post(FORGOT, json={"email": owner.email})
    assert unknown.status_code == known.status_code == 202
    assert unknown.content == known.content
    assert await mailbox.messages_to(stranger) == []
    assert await mailbox.count() == 1
    outcomes = sorted(
        (e.outcome, e.details.get("reason")) for e in await _events(app, "password.reset_requested")
    )
    assert outcomes == [("failure", "unknown_email"), ("success", None)]


async def test_answer_does_not_wait_for_the_mail_server(
    client: httpx.AsyncClient, mailbox: Mailbox, smtp_server: SmtpServer, owner: Member
) -> None:
    smtp_server.collector.delay_seconds = 1.5
    response = await client.post(FORGOT, json={"email": owner.email})
    assert response.status_code == 202
    # Ordering, not timing: the answer came back while the server still held the mail.
    assert smtp_server.collector.messages == [], "the request waited for SMTP delivery"
    assert len(await mailbox.messages_to(owner.email)) == 1


async def test_a_reset_does_not_bypass_mfa(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    tokens = await login(client, owner)
    secret, _ = await enrol_totp(client, tokens["access_token"])
    token = await _reset_token(client, mailbox, owner)
    new_password = strong_password()
    assert (await _reset(client, token, new_password)).status_code == 204

    after = await login(client, Member(owner.email, new_password, owner.user_id, None, None))
    assert after.get("mfa_required") is True
    assert "access_token" not in after
    completed = await client.post(
        "/v1/auth/mfa",
        json={"challenge": after["challenge"], "code": pyotp.TOTP(secret).at(time.time() + 30)},
    )
    assert completed.status_code == 200, completed.text
    access = completed.json()["access_token"]
    assert (await client.get("/v1/me", headers=bearer(access))).status_code == 200


async def test_a_weak_new_password_is_refused_and_the_link_stays_usable(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    token = await _reset_token(client, mailbox, owner)
    weak = await _reset(client, token, known_secret("password123"))
    assert weak.status_code == 422
    codes = {e["code"] for e in weak.json()["errors"]}
    assert {"too_short", "common_password"} <= codes
    assert all(e["field"] == "new_password" for e in weak.json()["errors"])
    reused = await _reset(client, token, owner.password)
    assert reused.status_code == 422
    assert "reused_password" in {e["code"] for e in reused.json()["errors"]}
    # No "password changed" notice for a change that did not happen.
    assert len(await mailbox.messages_to(owner.email)) == 1
    assert (await _reset(client, token, strong_password())).status_code == 204


async def test_a_reset_lifts_a_password_lockout(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    for _ in range(6):
        await client.post(
            "/v1/auth/login", json={"email": owner.email, "password": known_secret("wrong" * 4)}
        )
    locked = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert locked.status_code == 401
    token = await _reset_token(client, mailbox, owner)
    new_password = strong_password()
    assert (await _reset(client, token, new_password)).status_code == 204
    await login(client, Member(owner.email, new_password, owner.user_id, None, None))


async def test_a_disabled_account_gets_no_reset_mail(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox, make_member: MakeMember
) -> None:
    member = await make_member()
    from assay.accounts.models import User

    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, member.user_id)
        user.status = "disabled"
        await db.commit()
    response = await client.post(FORGOT, json={"email": member.email})
    assert response.status_code == 202
    assert await mailbox.messages_to(member.email) == []


async def test_reset_request_rejects_unknown_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(FORGOT, json={"email": "a@example.org", "user_id": "x"})
    assert response.status_code == 422
    body: dict[str, Any] = response.json()
    assert "user_id" in body["detail"]
