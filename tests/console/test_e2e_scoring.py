"""In Chromium: sign in, find the startup-success model, score a startup from the form
generated from its input schema, read the verdict and the explanation chart, look the
prediction up in the history, sign out. A viewer is offered no scoring, and the API
refuses the write if the page is bypassed. Every page passes axe's WCAG 2.1 AA rules.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.clients.live import LiveServer
from tests.console.conftest import Console
from tests.support.engine import SERIES_A, Pack
from tests.support.identity import Member, new_member
from tests.support.models import import_pack_into

MODEL = "startup-success"


@pytest.fixture(scope="module")
def owner(console_server: LiveServer, trained_pack: Pack) -> Member:
    """An owner of a fresh organisation holding the trained startup-success pack."""
    member = console_server.run(new_member(console_server.app))
    console_server.run(import_pack_into(console_server.app, member.org_id, trained_pack.directory))
    return member


def sign_in(console: Console, member: Member) -> Page:
    page = console.open("/sign-in")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    return page


def _label(field: str) -> re.Pattern[str]:
    """The form labels a field by its name, spaced and capitalised, then its unit."""
    words = field.replace("_", " ")
    return re.compile("^" + re.escape(words[0].upper() + words[1:]) + r"( \(.*\))?$")


def fill_record(page: Page, record: dict[str, Any]) -> None:
    for field, value in record.items():
        control = page.get_by_label(_label(field))
        if isinstance(value, bool):
            # As a keyboard user would: the box drawn over the input takes the clicks.
            if control.is_checked() != value:
                control.focus()
                page.keyboard.press("Space")
            expect(control).to_be_checked(checked=value)
        elif control.evaluate("element => element.tagName") == "SELECT":
            control.select_option(str(value))
        else:
            control.fill(str(value))


def test_sign_in_score_a_startup_see_the_verdict_and_chart_and_sign_out(
    console: Console, owner: Member
) -> None:
    # The first request of a signed-out visitor is a 401 from /v1/me.
    console.errors.expected.append("401")
    page = sign_in(console, owner)
    expect(page.get_by_text(f"Signed in as {owner.email}")).to_be_visible()
    console.assert_accessible()
    console.shoot("models")

    page.get_by_role("link", name=MODEL, exact=True).click()
    expect(page.get_by_role("heading", name=f"Model {MODEL}")).to_be_visible()
    expect(page.get_by_role("table", name="Input schema")).to_be_visible()
    console.assert_accessible()
    console.shoot("model-detail")

    page.get_by_role("link", name="Try it").click()
    expect(page.get_by_role("heading", name=f"Try {MODEL}")).to_be_visible()
    fill_record(page, SERIES_A)
    console.assert_accessible()
    page.get_by_role("button", name="Score").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    # The pack's model is an ensemble: the chart shows what each component added.
    expect(page.get_by_role("heading", name="Ensemble components")).to_be_visible()
    expect(page.locator(".recharts-surface").first).to_be_visible()
    table = page.get_by_role("table").filter(
        has=page.get_by_text("Contribution of each component to the score")
    )
    expect(table).to_be_visible()
    result = page.locator("main").inner_text()
    assert re.search(r"PASS|FAIL", result), result
    console.assert_accessible()
    console.shoot("try-it-result")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Predictions").click()
    expect(page.get_by_role("heading", name="Predictions")).to_be_visible()
    rows = page.get_by_role("table", name="Predictions").get_by_role("row")
    expect(rows).to_have_count(2)  # the header and the prediction just made
    console.assert_accessible()
    console.shoot("predictions")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    # The session is gone on the server too: the models page sends the browser back.
    page.goto(console.base_url + "/console/models")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_field_the_schema_refuses_is_named_on_the_form_before_anything_is_sent(
    console: Console, owner: Member
) -> None:
    console.errors.expected.append("401")
    page = sign_in(console, owner)
    page.goto(console.base_url + f"/console/models/{MODEL}/try")
    fill_record(page, {**SERIES_A, "gross_margin_percent": 250})
    page.get_by_role("button", name="Score").click()
    field = page.get_by_label(_label("gross_margin_percent"))
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("heading", name="Result")).to_have_count(0)
    console.assert_accessible()


def test_a_viewer_is_offered_no_scoring_and_a_forced_write_is_refused(
    console: Console, console_server: LiveServer, owner: Member
) -> None:
    viewer = console_server.run(
        new_member(console_server.app, role="viewer", org_slug=owner.org_slug)
    )
    console.errors.expected.extend(["401", "403"])
    page = sign_in(console, viewer)
    page.get_by_role("link", name=MODEL, exact=True).click()
    try_it = page.get_by_role("button", name="Try it")
    expect(try_it).to_be_disabled()
    expect(page.get_by_role("link", name="Try it")).to_have_count(0)
    console.assert_accessible()
    console.shoot("model-detail-viewer")

    # Bypassing the page: the same browser session, a valid CSRF token, the predict
    # route — the API refuses what the role does not allow.
    status = page.evaluate(
        """async ([model, record]) => {
            const csrf = await (await fetch('/v1/auth/csrf-token')).json();
            const answer = await fetch(`/v1/models/${model}/predict`, {
                method: 'POST',
                headers: {'content-type': 'application/json', 'x-csrf-token': csrf.csrf_token},
                body: JSON.stringify({record}),
            });
            return [answer.status, (await answer.json()).type];
        }""",
        [MODEL, SERIES_A],
    )
    assert status == [403, "urn:assay:problem:forbidden"]
