"""In Chromium: an owner creates an API key (scopes as checkboxes), sees its secret once,
copies it, and the key works; after a reload the secret is gone; revoked after
confirming, the key is refused. An owner invites an address, the invitation's mailed
link is accepted in another browser as a new account, and the member appears with the
role; the role is changed and the member removed. A viewer is offered none of this.
Every page passes axe's WCAG 2.1 AA rules.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.clients.live import LiveServer
from tests.console.conftest import Console
from tests.console.test_e2e_accounts import mail_link
from tests.support.identity import Member, known_secret, new_member, strong_password


@pytest.fixture(scope="module")
def owner(console_server: LiveServer) -> Member:
    return console_server.run(new_member(console_server.app))


def sign_in(console: Console, member: Member) -> Page:
    console.errors.expected.append("401")  # the signed-out visitor's first GET /v1/me
    page = console.open("/sign-in")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    return page


def go(page: Page, link: str, heading: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


def models_with(server: LiveServer, key: str) -> int:
    """GET /v1/models with only the key (no browser cookies): the answer's status."""
    return httpx.get(f"{server.base_url}/v1/models", headers={"x-api-key": key}).status_code


def test_create_an_api_key_see_it_once_use_it_and_revoke_it(
    console: Console, console_server: LiveServer, owner: Member
) -> None:
    console.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = sign_in(console, owner)
    go(page, "API keys", "API keys")
    console.assert_accessible()

    # Nothing chosen: both problems are shown, tied to their controls.
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("textbox", name="Name")).to_have_accessible_description(
        "Enter a value."
    )
    expect(page.get_by_role("group", name="Scopes")).to_have_accessible_description(
        "Only the permissions your role holds can be given to a key. Choose at least one scope."
    )

    name = f"ci-{uuid.uuid4().hex[:6]}"
    page.get_by_role("textbox", name="Name").fill(name)
    scopes = page.get_by_role("group", name="Scopes")
    scopes.get_by_role("checkbox", name="models:read", exact=True).check()
    scopes.get_by_role("checkbox", name="predict", exact=True).check()
    page.get_by_role("button", name="Create key").click()

    shown = page.get_by_role("region", name="Your new API key")
    expect(shown).to_be_visible()
    expect(shown).to_contain_text("you will not see it again")
    key = known_secret(shown.locator("dt:has-text('API key') + dd code").inner_text())
    assert len(key) > 20
    console.assert_accessible()
    console.shoot("api-key-created")

    shown.get_by_role("button", name="Copy key").click()
    expect(shown.get_by_role("status").first).to_have_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == key

    assert models_with(console_server, key) == 200

    table = page.get_by_role("table", name="API keys")
    row = table.get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text("models:read, predict")
    # The key ID column shows the key's public part, never the secret.
    key_id = row.get_by_role("cell").nth(0).inner_text()
    assert key_id
    assert key_id in key
    assert key_id != key

    # Once stored, or after a reload, the secret is nowhere on the page.
    page.reload()
    expect(page.get_by_role("heading", name="New API key")).to_be_visible()
    expect(row).to_be_visible()
    expect(page.get_by_role("region", name="Your new API key")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text(key)
    console.shoot("api-keys")

    row.get_by_role("button", name=f"Revoke {name}").click()
    dialog = page.get_by_role("dialog", name="Revoke this key?")
    expect(dialog).to_contain_text(name)
    console.assert_accessible()
    dialog.get_by_role("button", name="Yes, revoke the key").click()
    expect(dialog).to_be_hidden()
    expect(row.get_by_role("button", name=f"Revoke {name}")).to_have_count(0)
    assert models_with(console_server, key) == 401
    console.assert_accessible()


def test_invite_accept_in_another_browser_change_the_role_and_remove(
    console: Console, console_server: LiveServer, owner: Member
) -> None:
    page = sign_in(console, owner)
    go(page, "Members", "Members")
    expect(page.get_by_role("table", name="Members")).to_contain_text(owner.email)
    console.assert_accessible()

    address = f"invitee-{uuid.uuid4().hex[:8]}@example.org"
    page.get_by_role("textbox", name="Email address").fill(address)
    page.get_by_label("Role", exact=True).select_option("analyst")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status").filter(has_text="An invitation was sent")).to_have_text(
        f"An invitation was sent to {address}."
    )
    pending = page.get_by_role("table", name="Pending invitations")
    expect(pending.get_by_role("row").filter(has_text=address)).to_contain_text("analyst")
    console.assert_accessible()
    console.shoot("members")

    # The invitee opens the mailed link in a browser of their own, as a new account.
    link = mail_link(console_server, address, "accept-invitation")
    other = console.context.browser
    assert other is not None
    invitee = other.new_context(base_url=console_server.base_url, locale="en-GB")
    try:
        tab = invitee.new_page()
        tab.goto(link)
        expect(tab.get_by_role("heading", name="Accept the invitation")).to_be_visible()
        tab.get_by_label("Password").fill(strong_password())
        tab.get_by_label("Your name (new accounts)").fill("Ines Invitee")
        tab.get_by_role("button", name="Accept invitation").click()
        expect(tab.get_by_role("status")).to_contain_text("as analyst")
    finally:
        invitee.close()

    page.reload()
    members = page.get_by_role("table", name="Members")
    row = members.get_by_role("row").filter(has_text=address)
    expect(row).to_contain_text("Ines Invitee")
    role = page.get_by_label(f"Role of {address}")
    expect(role).to_have_value("analyst")
    expect(page.get_by_text("No pending invitations.")).to_be_visible()

    role.select_option("viewer")
    row.get_by_role("button", name=f"Save role {address}").click()
    expect(row.get_by_role("status")).to_have_text(f"The role of {address} is now viewer.")
    page.reload()
    expect(page.get_by_label(f"Role of {address}")).to_have_value("viewer")

    row.get_by_role("button", name=f"Remove {address}").click()
    dialog = page.get_by_role("dialog", name="Remove this member?")
    expect(dialog).to_contain_text(address)
    dialog.get_by_role("button", name="Yes, remove the member").click()
    expect(row).to_have_count(0)
    console.assert_accessible()


def test_revoke_a_pending_invitation(console: Console, owner: Member) -> None:
    page = sign_in(console, owner)
    go(page, "Members", "Members")
    address = f"revoked-{uuid.uuid4().hex[:8]}@example.org"
    page.get_by_role("textbox", name="Email address").fill(address)
    page.get_by_role("button", name="Send invitation").click()
    pending = page.get_by_role("table", name="Pending invitations")
    row = pending.get_by_role("row").filter(has_text=address)
    expect(row).to_contain_text("viewer")
    row.get_by_role("button", name=f"Revoke {address}").click()
    page.get_by_role("dialog", name="Revoke this invitation?").get_by_role(
        "button", name="Yes, revoke the invitation"
    ).click()
    expect(row).to_have_count(0)


def test_a_viewer_is_offered_no_write_actions(
    console: Console, console_server: LiveServer, owner: Member
) -> None:
    viewer = console_server.run(
        new_member(console_server.app, role="viewer", org_slug=owner.org_slug)
    )
    page = sign_in(console, viewer)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Members")).to_be_visible()
    expect(nav.get_by_role("link", name="Jobs")).to_have_count(0)
    expect(nav.get_by_role("link", name="API keys")).to_have_count(0)

    go(page, "Members", "Members")
    expect(page.get_by_role("table", name="Members")).to_contain_text(owner.email)
    expect(page.get_by_text("need the “members:manage” permission")).to_be_visible()
    for action in ("Save role", "Remove", "Send invitation", "Revoke"):
        expect(page.get_by_role("button", name=action)).to_have_count(0)
    expect(page.get_by_role("combobox", name="Role", exact=False)).to_have_count(0)
    expect(page.get_by_role("heading", name="Pending invitations")).to_have_count(0)
    console.assert_accessible()
    console.shoot("members-viewer")
