"""In Chromium: submit a CSV batch-scoring job from the Jobs page, follow its progress
live over server-sent events, download the result as CSV (a row per input row); cancel a
running job after confirming, and get its partial result. Scoring is held by a
`ScoringGate` so the job is surely still running while the page is looked at.
Every page passes axe's WCAG 2.1 AA rules.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.clients.live import MODEL, LiveServer, ScoringGate, Tenant, new_tenant
from tests.console.conftest import Console
from tests.support.identity import Member

ROWS = 10


@pytest.fixture(scope="module")
def tenant(console_server: LiveServer) -> Tenant:
    """An owner of a fresh organisation with the rules model `fraud-rules` at production."""
    return console_server.run(new_tenant(console_server))


@contextmanager
def held_scoring(server: LiveServer, free: int = 1) -> Iterator[ScoringGate]:
    """Scoring held after `free` calls until the test opens the gate (restored after)."""
    held = ScoringGate(server, free)
    held.close()
    try:
        yield held
    finally:
        held.restore()


def input_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["amount", "country", "email"])
    for index in range(rows):
        writer.writerow([100 * (index + 1), ["US", "GB", "DE"][index % 3], ""])
    return out.getvalue().encode()


def sign_in(console: Console, member: Member) -> Page:
    console.errors.expected.append("401")  # the signed-out visitor's first GET /v1/me
    page = console.open("/sign-in")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    return page


def submit_job(page: Page, rows: int) -> str:
    """From the Jobs page: choose the model, attach a CSV, submit; the job's page opens."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    page.get_by_label("Model").select_option(MODEL)
    upload: FilePayload = {"name": "input.csv", "mimeType": "text/csv", "buffer": input_csv(rows)}
    page.get_by_label("CSV file").set_input_files(files=[upload])
    page.get_by_role("button", name="Submit job").click()
    expect(page.get_by_role("heading", name="Job", exact=True)).to_be_visible()
    match = re.search(r"/console/jobs/([0-9a-f-]{36})$", page.url)
    assert match, page.url
    return match.group(1)


def test_submit_a_csv_follow_progress_live_and_download_the_result(
    console: Console, console_server: LiveServer, tenant: Tenant
) -> None:
    page = sign_in(console, tenant.member)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="New job")).to_be_visible()
    console.assert_accessible()

    # A submit without a file is stopped on the page, the message tied to the input.
    page.get_by_role("button", name="Submit job").click()
    expect(page.get_by_label("CSV file")).to_have_accessible_description(
        re.compile("Choose a CSV file.")
    )

    with held_scoring(console_server, free=1) as held:
        job_id = submit_job(page, ROWS)
        status = page.get_by_role("status").filter(has_text="State:")
        expect(status).to_have_text("State: Running.")
        expect(page.get_by_text("Updates live.")).to_be_visible()
        bar = page.get_by_role("progressbar")
        expect(bar).to_have_accessible_name(re.compile(rf"^[1-9]\d* of {ROWS} rows done\.$"))
        # Neither the result nor a download is offered while it runs; Cancel is.
        expect(page.get_by_role("link", name="Download results (CSV)")).to_have_count(0)
        expect(page.get_by_role("button", name="Cancel job")).to_be_enabled()
        console.assert_accessible()
        console.shoot("job-running")
        held.open()
        expect(status).to_have_text("State: Succeeded.")

    expect(bar).to_have_accessible_name(f"{ROWS} of {ROWS} rows done.")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    download_link = page.get_by_role("link", name="Download results (CSV)")
    expect(download_link).to_be_visible()
    console.assert_accessible()
    console.shoot("job-done")

    with page.expect_download() as info:
        download_link.click()
    download = info.value
    assert download.suggested_filename == f"job-{job_id}.csv"
    text = download.path().read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["row"]) for row in rows] == list(range(ROWS))
    assert {row["status"] for row in rows} == {"ok"}

    # The link's answer is CSV, an attachment (what the browser saved above).
    answer = page.request.get(f"/v1/jobs/{job_id}/result?format=csv")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment")

    # The list shows the job, done.
    page.get_by_role("link", name="All jobs").click()
    table = page.get_by_role("table", name="Jobs")
    row = table.get_by_role("row").filter(has_text=MODEL).first
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text(f"{ROWS} / {ROWS}")
    console.assert_accessible()
    console.shoot("jobs")


def test_cancel_a_running_job_after_confirming(
    console: Console, console_server: LiveServer, tenant: Tenant
) -> None:
    page = sign_in(console, tenant.member)
    with held_scoring(console_server, free=1) as held:
        submit_job(page, 40)
        status = page.get_by_role("status").filter(has_text="State:")
        expect(status).to_have_text("State: Running.")

        # Going back from the dialog changes nothing.
        page.get_by_role("button", name="Cancel job").click()
        dialog = page.get_by_role("dialog", name="Cancel this job?")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("button", name="Keep it running")).to_be_focused()
        console.assert_accessible()
        console.shoot("job-cancel-dialog")
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(page.get_by_role("button", name="Cancel job")).to_be_focused()
        expect(status).to_have_text("State: Running.")

        page.get_by_role("button", name="Cancel job").click()
        dialog.get_by_role("button", name="Yes, cancel the job").click()
        expect(dialog).to_be_hidden()
        expect(status).to_contain_text("Cancellation requested")
        expect(page.get_by_role("button", name="Cancel job")).to_be_disabled()
        held.open()
        expect(status).to_have_text("State: Cancelled.")

    expect(page.get_by_text("The result is partial: the job did not finish.")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download results (CSV)").click()
    text = info.value.path().read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert 0 < len(rows) < 40
    # Chunks run side by side: the rows kept are some of the input's, in input order.
    indices = [int(row["row"]) for row in rows]
    assert indices == sorted(set(indices))
    assert set(indices) < set(range(40))
    console.assert_accessible()
