"""The console's files as Assay serves them: deep links, caching, policy, no build.

Over a build of our own in a temporary directory, so these run without Node; the real
build is checked in the wheel (tests/test_packaging.py) and in the browser (test_e2e_*).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from assay.app import create_app
from assay.console.serving import install_console
from assay.http.security_headers import API_CSP, CONSOLE_CSP
from assay.settings import Settings

INDEX = (
    b'<!doctype html><html><head><script type="module" src="/console/assets/app-1a2b3c4d.js">'
    b'</script></head><body><div id="root"></div></body></html>'
)
SCRIPT = b"console.log('the console');"


@pytest.fixture
def build(tmp_path: Path) -> Path:
    directory = tmp_path / "static"
    (directory / "assets").mkdir(parents=True)
    (directory / "index.html").write_bytes(INDEX)
    (directory / "assets" / "app-1a2b3c4d.js").write_bytes(SCRIPT)
    (directory / "sw.js").write_bytes(b"self.addEventListener('fetch', () => {});")
    (directory / "manifest.webmanifest").write_bytes(b'{"name": "Assay"}')
    # Outside the build: never reachable through it.
    (tmp_path / "secret.txt").write_text("not a console file")
    return directory


async def _serving(
    settings_factory: Callable[..., Settings], tmp_path: Path, directory: Path | None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = settings_factory(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}", console_enabled=False
    )
    application = create_app(settings)
    if directory is not None:
        install_console(application, directory)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


@pytest.fixture
async def served(
    settings_factory: Callable[..., Settings], tmp_path: Path, build: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async for pair in _serving(settings_factory, tmp_path, build):
        yield pair


@pytest.fixture
async def console(served: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return served[1]


@pytest.mark.parametrize("path", ["/console/", "/console/models/fraud", "/console/sign-in"])
async def test_a_page_of_the_application_is_its_index_under_the_console_policy(
    console: httpx.AsyncClient, path: str
) -> None:
    answer = await console.get(path)
    assert answer.status_code == 200
    assert answer.content == INDEX
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-security-policy"] == CONSOLE_CSP
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-frame-options"] == "DENY"


async def test_hashed_assets_are_immutable_even_for_a_signed_in_browser(
    console: httpx.AsyncClient,
) -> None:
    anonymous = await console.get("/console/assets/app-1a2b3c4d.js")
    assert anonymous.status_code == 200
    assert anonymous.content == SCRIPT
    assert anonymous.headers["content-type"] == "text/javascript; charset=utf-8"
    assert anonymous.headers["cache-control"] == "public, max-age=31536000, immutable"
    cookie = {"cookie": "assay_session=anything"}
    signed_in = await console.get("/console/assets/app-1a2b3c4d.js", headers=cookie)
    assert signed_in.headers["cache-control"] == "public, max-age=31536000, immutable"
    # The page itself, with the same cookie, is never stored.
    page = await console.get("/console/models", headers=cookie)
    assert page.headers["cache-control"] == "no-store"


async def test_the_service_worker_runs_under_the_console_policy_not_the_apis(
    console: httpx.AsyncClient,
) -> None:
    # A worker is governed by its own script's policy: the API's default-src 'none'
    # would stop it from fetching the shell it caches.
    answer = await console.get("/console/sw.js")
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CONSOLE_CSP
    assert answer.headers["cache-control"] == "no-cache"
    manifest = await console.get("/console/manifest.webmanifest")
    assert manifest.headers["content-type"] == "application/manifest+json"


async def test_a_known_etag_is_answered_not_modified(console: httpx.AsyncClient) -> None:
    first = await console.get("/console/")
    again = await console.get("/console/", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    other = await console.get("/console/", headers={"if-none-match": '"something-else"'})
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/app-00000000.js",
        "/console/favicon.ico",
        "/console/%2e%2e/secret.txt",
        "/console/..%2fsecret.txt",
        "/console/assets/../../secret.txt",
    ],
)
async def test_a_missing_file_is_a_problem_not_the_index_and_nothing_outside_is_read(
    console: httpx.AsyncClient, path: str
) -> None:
    answer = await console.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert b"not a console file" not in answer.content
    assert answer.headers["content-security-policy"] == API_CSP


async def test_the_api_keeps_its_problems_and_writes_are_not_pages(
    console: httpx.AsyncClient,
) -> None:
    missing = await console.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    posted = await console.post("/console/models", json={})
    assert posted.status_code == 405
    assert posted.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/", "/console/"),
        ("/console", "/console/"),
        ("/reset-password", "/console/reset-password"),
        ("/verify-email", "/console/verify-email"),
        ("/accept-invitation", "/console/accept-invitation"),
        ("/forgot-password", "/console/forgot-password"),
        ("/sign-in", "/console/sign-in"),
    ],
)
async def test_the_root_and_the_pages_links_pointed_at_redirect_to_the_console(
    console: httpx.AsyncClient, path: str, target: str
) -> None:
    # The browser keeps a link's #token fragment across a redirect whose Location
    # has none (RFC 9110 section 10.2.2), so links mailed before the console still work.
    answer = await console.get(path)
    assert answer.status_code == 307
    assert answer.headers["location"] == target


async def test_without_a_build_a_page_says_how_to_build_it(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    async for _, http in _serving(settings_factory, tmp_path, tmp_path / "not-built"):
        answer = await http.get("/console/models")
        assert answer.status_code == 503
        assert "make console" in answer.text
        assert "has not been built" in answer.text
        assert answer.headers["content-security-policy"] == CONSOLE_CSP
        assert "<script" not in answer.text


async def test_a_build_made_after_the_start_is_served_without_a_restart(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    later = tmp_path / "later"
    async for _, http in _serving(settings_factory, tmp_path, later):
        assert (await http.get("/console/")).status_code == 503
        later.mkdir()
        (later / "index.html").write_bytes(INDEX)
        assert (await http.get("/console/")).content == INDEX


async def test_an_api_only_deployment_serves_no_console(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    async for _, http in _serving(settings_factory, tmp_path, None):
        assert (await http.get("/")).status_code == 404
        assert (await http.get("/console/")).status_code == 404
        assert (await http.get("/reset-password")).status_code == 404


async def test_the_console_routes_are_not_in_the_api_document(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    application, _ = served
    paths = application.openapi()["paths"]
    assert not [path for path in paths if path.startswith("/console") or path == "/"]
