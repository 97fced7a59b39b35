"""In Chromium: the pages e-mails link to, two-step verification, and CSRF.

- forgot password → the mail's link (read from the outbox) → a new password → sign in;
- an organisation that requires MFA: enrolment with a real TOTP code from the setup key
  the page shows, the backup codes, then signing in with a code;
- a cross-site form posted with the victim's browser changes nothing.
"""

from __future__ import annotations

import re
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from assay.orgs.models import Organisation
from tests.clients.live import LiveServer
from tests.console.conftest import Console
from tests.support.identity import Member, known_secret, new_member, strong_password

# Mail is written after the request's commit; this bounds the wait for the file.
MAIL_POLLS = 400
MAIL_POLL_SECONDS = 0.05


def _outbox(server: LiveServer) -> Path:
    return Path(server.app.state.settings.data_dir) / "outbox"


def _text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("the mail has no text part")


def mail_link(server: LiveServer, to: str, page: str) -> str:
    """The link to `page` in the newest mail to `to` (bounded polling for the file)."""
    pattern = re.compile(rf"http://127\.0\.0\.1:\d+/console/{page}#token=[\w-]+")
    for _ in range(MAIL_POLLS):
        for path in sorted(_outbox(server).glob("*.eml"), reverse=True):
            message = message_from_bytes(path.read_bytes())
            if message["To"] == to:
                found = pattern.search(_text(message))
                assert found is not None, _text(message)
                return known_secret(found.group(0))
        time.sleep(MAIL_POLL_SECONDS)
    raise AssertionError(f"no mail to {to} in {_outbox(server)}")


def _sign_in_form(page: Page, member: Member, password: str) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def member(console_server: LiveServer) -> Member:
    return console_server.run(new_member(console_server.app))


def test_a_reset_mails_link_sets_a_new_password_that_signs_in(
    console: Console, console_server: LiveServer, member: Member
) -> None:
    console.errors.expected.append("401")
    page = console.open("/sign-in")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    console.assert_accessible()
    page.get_by_label("Email").fill(member.email)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("status")).to_be_visible()

    link = mail_link(console_server, member.email, "reset-password")
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    # The token leaves the address bar at once (history, screenshots, shoulder surfing).
    assert "#token" not in page.url
    console.assert_accessible()
    console.shoot("reset-password")
    password = strong_password()
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("Confirm new password").fill(password)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_text("Your password has been reset. You can now sign in.")).to_be_visible()

    page.goto(console.base_url + "/console/sign-in")
    _sign_in_form(page, member, password)
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()


def test_mfa_enrolment_with_a_real_code_then_sign_in_with_one(
    console: Console, console_server: LiveServer, member: Member
) -> None:
    async def require_mfa() -> None:
        async with console_server.app.state.database.sessionmaker() as db:
            await db.execute(
                update(Organisation)
                .where(Organisation.id == member.org_id)
                .values(mfa_required=True)
            )
            await db.commit()

    console_server.run(require_mfa())
    console.errors.expected.append("401")
    page = console.open("/sign-in")
    _sign_in_form(page, member, member.password)
    expect(page.get_by_role("heading", name="Set up two-step verification")).to_be_visible()
    page.get_by_role("button", name="Show the setup code").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    console.assert_accessible()
    console.shoot("mfa-enrolment")
    shown = page.get_by_text(re.compile(r"^Setup key \(if you cannot scan\): ")).inner_text()
    totp = pyotp.TOTP(known_secret(shown.rsplit(": ", 1)[1].strip()))
    page.get_by_label("Verification code").fill(totp.now())
    page.get_by_role("button", name="Confirm code").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    codes = page.locator("ul.codes li").all_inner_texts()
    assert len(codes) >= 8, codes
    for code in codes:
        known_secret(code.strip())

    page.get_by_role("link", name="Go to sign in").click()
    _sign_in_form(page, member, member.password)
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    console.assert_accessible()
    # The next step's code: the one just used is refused as a replay, and the server
    # accepts one step either side of its own, so this needs no wait for the clock.
    page.get_by_label("Verification code").fill(totp.at(time.time() + totp.interval))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()


def test_a_cross_site_form_post_in_a_signed_in_browser_changes_nothing(
    console: Console, console_server: LiveServer, member: Member
) -> None:
    console.errors.expected.extend(["401", "403"])
    page = console.open("/sign-in")
    _sign_in_form(page, member, member.password)
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()

    # Another site (answered by the browser's router, nothing leaves the machine) whose
    # page posts a form to Assay as soon as it loads: signing the victim out, a write
    # that needs no body, so only the cookie's SameSite and the CSRF check stand in its
    # way. (An inline script is fine here: the policy is the attacker's own.)
    attacker = "http://attacker.example"
    forged = f"""<!doctype html><html><body>
        <form id="f" method="post" action="{console.base_url}/v1/auth/logout"></form>
        <script>document.getElementById('f').submit()</script></body></html>"""
    page.route(
        f"{attacker}/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=forged),
    )
    with page.expect_response(f"{console.base_url}/v1/auth/logout") as posted:
        page.goto(f"{attacker}/win-a-prize")
    assert posted.value.status in (401, 403), posted.value.status

    # Still signed in: the session was not ended by the forged request.
    page.goto(console.base_url + "/console/models")
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    expect(page.get_by_text(f"Signed in as {member.email}")).to_be_visible()
