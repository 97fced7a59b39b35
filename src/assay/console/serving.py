"""Serve the built console at `/console/`: its files, and `index.html` for deep links.

The files are indexed once, when the app is built: a request is answered only with a
file from that index, so no request path ever reaches the filesystem (no traversal to
guard). A path without a file extension that names no file is a page of the
single-page application (`/console/models/x`), answered with `index.html` so the
router in the browser takes over; a missing file *with* an extension is a 404, so a
stale asset URL fails loudly instead of being answered with HTML. `/v1/...` is never
under this prefix, so API errors stay problem+json.

Caching: Vite names everything under `assets/` by its content hash, so those are
immutable for a year and marked public (they hold no personal data, signed in or not;
see `PUBLIC_ASSET_STATE_KEY` in `assay.http.security_headers`). Everything else
(`index.html`, the service worker, the manifest) is revalidated with its ETag on
every load, so a new release reaches browsers at once.

Every console response carries the console's CSP explicitly: the service worker's
script is a JavaScript file, and a worker runs under the policy of its own script's
response — the API's `default-src 'none'` would forbid it to fetch the shell.

Without a build (a source checkout before `make console`), `/console/` answers a page
that says how to build it, instead of a blank screen.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from assay.http.security_headers import CONSOLE_CSP, PUBLIC_ASSET_STATE_KEY

PREFIX: Final = "/console"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
# Pages the e-mailed links pointed at before the console existed, kept for mails
# already sent; the browser keeps the link's #token fragment across the redirect.
LEGACY_PAGES: Final = (
    "/reset-password",
    "/verify-email",
    "/accept-invitation",
    "/forgot-password",
    "/sign-in",
)
_TYPES: Final = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain",
}
NOT_BUILT_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Assay console not built</title></head>
<body>
<main>
<h1>The Assay console has not been built</h1>
<p>This Assay runs from a source checkout whose web console was not built. The API works
(<a href="/docs">API docs</a>); to build the console, you need Node 20 and npm, then, in
the checkout:</p>
<pre><code>make console</code></pre>
<p>(or <code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>) and reload this page.
Installed wheels ship the console already built.</p>
<p>Looked for it in: <code>{directory}</code></p>
</main>
</body>
</html>
"""


@dataclass(frozen=True, slots=True)
class ConsoleFile:
    content: bytes
    media_type: str
    etag: str
    immutable: bool


def default_directory() -> Path:
    return Path(str(files("assay.console").joinpath("static")))


def index_files(directory: Path) -> dict[str, ConsoleFile]:
    """Every file of the build, by its path relative to `directory` ('' for none)."""
    if not (directory / "index.html").is_file():
        return {}
    found: dict[str, ConsoleFile] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(directory).as_posix()
        content = path.read_bytes()
        media_type = _TYPES.get(path.suffix.lower()) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        found[relative] = ConsoleFile(
            content=content,
            media_type=media_type,
            etag='"' + hashlib.sha256(content).hexdigest()[:32] + '"',
            immutable=relative.startswith("assets/"),
        )
    return found


def _looks_like_a_file(path: str) -> bool:
    return "." in path.rsplit("/", 1)[-1]


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    return any(candidate.strip() in (etag, "*") for candidate in header.split(","))


def _answer(request: Request, file: ConsoleFile) -> Response:
    headers = {"Content-Security-Policy": CONSOLE_CSP, "ETag": file.etag}
    if file.immutable:
        headers["Cache-Control"] = IMMUTABLE
        request.scope.setdefault("state", {})[PUBLIC_ASSET_STATE_KEY] = True
    else:
        headers["Cache-Control"] = REVALIDATE
    if _etag_matches(request, file.etag):
        return Response(status_code=304, headers=headers)
    return Response(file.content, media_type=file.media_type, headers=headers)


class _Build:
    """The build's files, read on first use (most apps a test suite makes serve no page)
    and again while there is none, so a build made after the start is picked up."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, ConsoleFile] = {}

    def files(self) -> dict[str, ConsoleFile]:
        if not self._files:
            self._files = index_files(self.directory)
        return self._files


def console_routes(directory: Path | None = None) -> list[Route]:
    """The console's routes over the build in `directory` (the package's by default)."""
    directory = directory or default_directory()
    build = _Build(directory)

    async def console_file(request: Request) -> Response:
        path: str = request.path_params["path"]
        built = build.files()
        if not built:
            page = NOT_BUILT_PAGE.format(directory=html.escape(str(directory)))
            return Response(
                page,
                status_code=503,
                media_type="text/html",
                headers={"Content-Security-Policy": CONSOLE_CSP, "Retry-After": "60"},
            )
        file = built.get(path)
        if file is None:
            if _looks_like_a_file(path):
                raise HTTPException(404)
            file = built["index.html"]  # a page of the application: its router decides
        return _answer(request, file)

    async def to_console(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    def to_page(page: str) -> Route:
        async def redirect(request: Request) -> Response:
            return RedirectResponse(PREFIX + page, status_code=307)

        return Route(page, redirect, methods=["GET"], include_in_schema=False)

    return [
        Route("/", to_console, methods=["GET"], include_in_schema=False),
        Route(PREFIX, to_console, methods=["GET"], include_in_schema=False),
        Route(PREFIX + "/{path:path}", console_file, methods=["GET"], include_in_schema=False),
        *(to_page(page) for page in LEGACY_PAGES),
    ]


def install_console(app: FastAPI, directory: Path | None = None) -> None:
    """Add the console's routes after every API route (they only match their own paths)."""
    app.router.routes.extend(console_routes(directory))
