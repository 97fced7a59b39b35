"""In Chromium: the console as an installable application and its first sign-in.

- a one-time password (the demo's, `assay admin reset-password`'s) must be changed
  before anything else, and the new one signs in;
- the service worker caches the shell: with the network cut, a console page shows the
  offline page instead of the browser's error;
- the manifest makes it installable; deep links and the locale switch work.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from assay.accounts.models import User
from tests.clients.live import LiveServer
from tests.console.conftest import Console
from tests.support.identity import Member, new_member, strong_password


@pytest.fixture
def member(console_server: LiveServer) -> Member:
    return console_server.run(new_member(console_server.app))


def test_a_one_time_password_is_changed_at_first_sign_in(
    console: Console, console_server: LiveServer, member: Member
) -> None:
    async def one_time() -> None:
        async with console_server.app.state.database.sessionmaker() as db:
            await db.execute(
                update(User).where(User.id == member.user_id).values(must_change_password=True)
            )
            await db.commit()

    console_server.run(one_time())
    console.errors.expected.append("401")
    page = console.open("/models")  # a deep link, signed out: sign in first
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    console.assert_accessible()
    console.shoot("change-password")
    new = strong_password()
    page.get_by_label("Current password").fill(member.password)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("Confirm new password").fill(new)
    page.get_by_role("button", name="Change password").click()
    # The restricted session is replaced by a full one: straight on to the console.
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    # And the new password is the one that signs in from now on.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(new)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()


def test_with_the_network_cut_a_console_page_is_the_offline_page(console: Console) -> None:
    console.errors.expected.extend(["401", "ERR_INTERNET_DISCONNECTED"])
    page = console.open("/sign-in")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The worker has installed (the shell is cached) and controls this page.
    active = page.evaluate(
        "async () => { const r = await navigator.serviceWorker.ready; return r.active.state; }"
    )
    assert active in ("activating", "activated")
    page.reload()
    assert page.evaluate("() => navigator.serviceWorker.controller !== null")

    console.context.set_offline(True)
    page.goto(console.base_url + "/console/models")
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    console.assert_accessible()
    console.shoot("offline")
    console.context.set_offline(False)


def test_the_manifest_makes_it_installable(console: Console) -> None:
    console.errors.expected.append("401")
    page = console.open("/sign-in")
    href = page.locator("link[rel=manifest]").get_attribute("href")
    assert href is not None
    answer = page.request.get(console.base_url + href)
    assert answer.status == 200
    manifest = json.loads(answer.body())
    assert manifest["start_url"] == "/console/"
    assert manifest["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        image = page.request.get(console.base_url + "/console/" + icon["src"])
        assert image.status == 200
        assert image.headers["content-type"] == "image/png"


def test_the_locale_switch_translates_the_page_and_its_language(console: Console) -> None:
    console.errors.expected.append("401")
    page = console.open("/sign-in")
    page.get_by_label("Language").select_option("fr")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "fr"
    console.assert_accessible()
    console.shoot("sign-in-fr")
