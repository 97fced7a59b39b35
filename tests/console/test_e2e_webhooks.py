"""In Chromium: an owner registers a webhook endpoint (event types as checkboxes) on a
receiver this module runs on 127.0.0.1, sees its signing secret once, sends a test event
and follows it into the delivery log and its attempts; a refused URL shows the guard's
422 on the URL field; the secret is rotated (shown once), the endpoint disabled, enabled
and deleted after confirming. A maintainer reads without write actions; a viewer has no
"Webhooks" link. Every page passes axe's WCAG 2.1 AA rules.

The module's live Assay is the console's fixture with 127.0.0.1 opened to the
outbound guard, which refuses loopback by default, so a real delivery can be watched.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from tests.clients.live import LiveServer
from tests.console.conftest import Console
from tests.console.test_e2e_keys_members import go, sign_in
from tests.support.identity import Member, known_secret, new_member


class _Recorder(BaseHTTPRequestHandler):
    """Answers 204 to every POST and keeps the body it was sent."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        self.server.received.append(body.decode("utf-8", "replace"))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


class Receiver(ThreadingHTTPServer):
    received: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


# The console's live server (tests/console/conftest.py), with loopback (only 127.0.0.1)
# opened to webhooks, and the dispatcher polling often.
SERVER_SETTINGS = {
    "outbound_allowed_networks": ["127.0.0.1/32"],
    "webhook_poll_interval_seconds": 0.2,
    "outbound_timeout_seconds": 5.0,
}


@pytest.fixture(scope="module")
def receiver(console_server: LiveServer) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 answering 204, one per server (so per database kind)."""
    server = Receiver(("127.0.0.1", 0), _Recorder)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def owner(console_server: LiveServer) -> Member:
    return console_server.run(new_member(console_server.app))


def create_endpoint(page: Page, url: str, description: str) -> None:
    page.get_by_role("textbox", name="Endpoint URL").fill(url)
    page.get_by_role("textbox", name="Description").fill(description)
    types = page.get_by_role("group", name="Event types")
    types.get_by_role("checkbox").first.check()
    page.get_by_role("button", name="Create endpoint").click()


def test_register_see_the_secret_once_test_rotate_disable_and_delete(
    console: Console, owner: Member, receiver: Receiver
) -> None:
    page = sign_in(console, owner)
    go(page, "Webhooks", "Webhooks")
    expect(page.get_by_text("No webhook endpoints yet.")).to_be_visible()
    console.assert_accessible()

    # Nothing chosen: both problems are shown, tied to their controls.
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_role("textbox", name="Endpoint URL")).to_have_accessible_description(
        "Events are POSTed to this https address, signed with the endpoint\u2019s secret. "
        "Enter a value."
    )
    expect(page.get_by_role("group", name="Event types")).to_have_accessible_description(
        "Choose at least one event type."
    )

    # An address the outbound guard refuses: the 422 is shown on the URL field.
    console.errors.expected.append("422")
    create_endpoint(page, "http://169.254.169.254/latest", "metadata")
    url_field = page.get_by_role("textbox", name="Endpoint URL")
    expect(url_field).to_have_attribute("aria-invalid", "true")
    description = url_field.evaluate(
        "e => e.getAttribute('aria-describedby').split(' ')"
        ".map(id => document.getElementById(id)?.textContent).join(' ')"
    )
    assert "resolves to" in description or "link-local" in description, description

    note = f"ci-{uuid.uuid4().hex[:6]}"
    url_field.fill(receiver.url)
    page.get_by_role("textbox", name="Description").fill(note)
    page.get_by_role("button", name="Create endpoint").click()
    shown = page.get_by_role("region", name=f"Signing secret of {receiver.url}")
    expect(shown).to_contain_text("you will not see it again")
    secret = known_secret(shown.locator("code").inner_text())
    assert secret.startswith("whsec_")
    console.assert_accessible()

    table = page.get_by_role("table", name="Webhooks")
    row = table.get_by_role("row").filter(has_text=receiver.url)
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text(note)
    shown.get_by_role("button", name="I have stored it").click()
    expect(page.get_by_role("heading", name="New webhook endpoint")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text(secret)
    console.shoot("webhooks")

    row.get_by_role("link", name=receiver.url).click()
    expect(page.get_by_role("heading", name="Webhook endpoint", exact=True)).to_be_visible()
    expect(page.get_by_text("Nothing was delivered to this endpoint yet.")).to_be_visible()
    console.assert_accessible()

    # A test event reaches the receiver on 127.0.0.1 and shows in the delivery log.
    page.get_by_role("button", name="Send a test event").click()
    expect(page.get_by_role("status").filter(has_text="queued")).to_be_visible()
    log = page.get_by_role("table", name="Delivery log")
    delivery = log.get_by_role("row").filter(has_text="webhook.test")
    expect(delivery).to_contain_text("Delivered")
    expect(delivery.get_by_role("cell").nth(2)).to_have_text("204")
    assert any("webhook.test" in body for body in receiver.received)
    delivery.get_by_role("button", name="Attempts").click()
    attempts = page.get_by_role("table", name="Attempts of the webhook.test delivery")
    expect(attempts.get_by_role("row")).to_have_count(2)
    expect(attempts).to_contain_text("204")
    console.assert_accessible()
    console.shoot("webhook-detail")

    # Redeliver: the same delivery is sent again, its attempts log grows by one.
    delivery.get_by_role("button", name="Redeliver").click()
    expect(attempts.get_by_role("row")).to_have_count(3)
    expect(delivery).to_contain_text("Delivered")
    assert sum("webhook.test" in body for body in receiver.received) == 2

    # Rotate: the new secret is shown once, after confirming.
    page.get_by_role("button", name="Rotate secret").click()
    page.get_by_role("dialog", name="Rotate the signing secret?").get_by_role(
        "button", name="Yes, issue a new secret"
    ).click()
    rotated = page.get_by_role("region", name="Your new signing secret")
    expect(rotated).to_contain_text("also signs messages until")
    new_secret_text = known_secret(rotated.locator("code").inner_text())
    assert new_secret_text.startswith("whsec_")
    assert new_secret_text != secret
    rotated.get_by_role("button", name="I have stored it").click()
    expect(page.locator("body")).not_to_contain_text(new_secret_text)

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_have_text(
        "The endpoint is disabled: no events are sent to it."
    )
    expect(page.get_by_role("button", name="Send a test event")).to_be_disabled()
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("status")).to_have_text("The endpoint is enabled.")

    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this endpoint?")
    expect(dialog).to_contain_text(receiver.url)
    console.assert_accessible()
    dialog.get_by_role("button", name="Yes, delete the endpoint").click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    expect(page.get_by_text("No webhook endpoints yet.")).to_be_visible()


def test_a_maintainer_reads_without_write_actions_and_a_viewer_has_no_link(
    console: Console, console_server: LiveServer, owner: Member, receiver: Receiver
) -> None:
    page = sign_in(console, owner)
    go(page, "Webhooks", "Webhooks")
    create_endpoint(page, receiver.url, "read-only check")
    expect(page.get_by_role("region", name=f"Signing secret of {receiver.url}")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    maintainer = console_server.run(
        new_member(console_server.app, role="maintainer", org_slug=owner.org_slug)
    )
    page = sign_in(console, maintainer)
    go(page, "Webhooks", "Webhooks")
    expect(page.get_by_text("need the “webhooks:manage” permission")).to_be_visible()
    expect(page.get_by_role("heading", name="New webhook endpoint")).to_have_count(0)
    page.get_by_role("table", name="Webhooks").get_by_role("link", name=receiver.url).click()
    expect(page.get_by_role("heading", name="Webhook endpoint", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Delivery log")).to_be_visible()
    for action in ("Disable", "Send a test event", "Rotate secret", "Delete", "Redeliver"):
        expect(page.get_by_role("button", name=action)).to_have_count(0)
    console.assert_accessible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    viewer = console_server.run(
        new_member(console_server.app, role="viewer", org_slug=owner.org_slug)
    )
    page = sign_in(console, viewer)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Models")).to_be_visible()
    expect(nav.get_by_role("link", name="Webhooks")).to_have_count(0)
