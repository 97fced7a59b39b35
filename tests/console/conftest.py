"""The console in a real browser: Chromium (the system's, driven by Playwright) against a
live Assay on a loopback port, one per database kind for a module.

Each test gets a fresh browser context (no cookies, no service worker) that fails the
test on any error the page logs — a Content-Security-Policy violation included — and a
`shoot(name)` that writes the page, at desktop and phone width, to
build/console-screenshots/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from assay.app import create_app
from assay.settings import Settings
from tests.clients.conftest import LIVE_SETTINGS
from tests.clients.live import LiveServer
from tests.conftest import IN_CI, make_database_url, new_secret
from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("ASSAY_TEST_CHROMIUM", "/usr/bin/chromium"))
BUILD = REPO / "src" / "assay" / "console" / "static" / "index.html"
AXE = REPO / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "build" / "console-screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The WCAG 2.1 AA rules of axe-core (and the A rules they include).
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def _require(condition: bool, why: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{why}: CI must run the console's end-to-end tests")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser(console_server: LiveServer) -> Iterator[Browser]:
    """Chromium for the module, started after its server and stopped before it.

    Playwright's synchronous API runs an event loop in this thread while it is started,
    so nothing may call asyncio.run() then (the server fixture does, to create and drop
    its database), and it must be stopped before the next module's async tests.
    """
    _require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    _require(BUILD.exists(), "the console is not built (make console)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def console_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A live Assay serving the built console, over a fresh database of the module; a
    module may add settings of its own in `SERVER_SETTINGS`."""
    directory = tmp_path_factory.mktemp(f"console-{request.param}")
    url, drop = asyncio.run(make_database_url(request.param, directory))
    port = free_port()
    settings = Settings(
        **LIVE_SETTINGS,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        data_dir=directory / "data",
        database_url=url,
        token_signing_key=new_secret(),
        session_secret=new_secret(),
        encryption_key=new_secret(),
        **getattr(request.module, "SERVER_SETTINGS", {}),
    )
    server = LiveServer(create_app(settings), settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if drop is not None:
            asyncio.run(drop())


@dataclass
class PageErrors:
    """What the page reported as broken: console errors and uncaught exceptions."""

    messages: list[str] = field(default_factory=list)
    # Errors a test provokes on purpose (a refused request logs one in Chromium).
    expected: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(message.text)

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(e in m for e in self.expected)]


@dataclass
class Console:
    """A browser tab on the console, with what it needs to be checked."""

    page: Page
    context: BrowserContext
    base_url: str
    errors: PageErrors
    test_name: str

    def open(self, path: str) -> Page:
        self.page.goto(self.base_url + "/console" + path)
        return self.page

    def shoot(self, name: str) -> None:
        """The page as it is now, at desktop and at phone width."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
        self.page.set_viewport_size(DESKTOP)

    def axe_violations(self) -> list[dict[str, Any]]:
        """axe-core's WCAG 2.1 AA violations on the page as it is now.

        Evaluated through the DevTools protocol, which the page's CSP does not govern
        (a <script> tag with axe's source would be refused, as it should be).
        """
        _require(AXE.exists(), "axe-core is not installed (cd frontend && npm ci)")
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text(encoding="utf-8"))
        result: list[dict[str, Any]] = self.page.evaluate(
            """async (tags) => {
                const only = {runOnly: {type: 'tag', values: tags}};
                const result = await window.axe.run(document, only);
                return result.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.map(n => n.target.join(' ')),
                }));
            }""",
            WCAG_AA,
        )
        return result

    def assert_accessible(self) -> None:
        violations = self.axe_violations()
        assert not violations, json.dumps(violations, indent=2)


@pytest.fixture
def console(
    browser: Browser, console_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Console]:
    context = browser.new_context(
        base_url=console_server.base_url, viewport=DESKTOP, locale="en-GB"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = PageErrors()
    page.on("console", errors.on_console)
    page.on("pageerror", lambda error: errors.messages.append(f"uncaught: {error}"))
    tab = Console(page, context, console_server.base_url, errors, request.node.name)
    try:
        yield tab
    finally:
        context.close()
    unexpected = errors.unexpected()
    assert not unexpected, "the page logged errors:\n" + "\n".join(unexpected)
