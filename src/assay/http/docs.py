"""The interactive API docs (Swagger UI), served from the installed package.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script,
which would force `'unsafe-inline'` and a third-party origin into its policy, and
fails on machines without internet access. This page loads the same Swagger UI 5
files (shipped by the `fastapi-offline` package) from our own origin and starts it
from a separate script, so its policy allows exactly: our script and stylesheet, the
OpenAPI document from our origin, and the `data:` images the stylesheet embeds.
"""

from __future__ import annotations

import html
from importlib.metadata import version
from importlib.resources import files

import anyio
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
# Starts Swagger UI without inline script. Only the `apis` preset: the standalone
# preset's top bar injects an inline <style>, and lets a visitor load any URL.
INIT_SCRIPT = """"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    queryConfigEnabled: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis]
  });
})();
"""
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{base}/favicon.png?v={version}">
<link rel="stylesheet" href="{base}/swagger-ui.css?v={version}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{base}/swagger-ui-bundle.js?v={version}"></script>
<script src="{base}/swagger-init.js?v={version}"></script>
</body>
</html>
"""
# Asset URLs carry the package version, so browsers may keep them for a year.
IMMUTABLE = "public, max-age=31536000, immutable"

_assets: dict[str, bytes] = {}


async def _asset_bytes(name: str) -> bytes:
    cached = _assets.get(name)
    if cached is None:
        resource = files("fastapi_offline").joinpath("static", name)
        # Read once, off the event loop (the bundle is 1.5 MB).
        cached = await anyio.to_thread.run_sync(resource.read_bytes)
        _assets[name] = cached
    return cached


def install_docs(app: FastAPI) -> None:
    """Replace FastAPI's CDN-based /docs (and its OAuth2 redirect page) with ours."""
    if app.docs_url is None or app.openapi_url is None:
        return
    docs_url, openapi_url, title = app.docs_url, app.openapi_url, app.title
    replaced = {docs_url, app.swagger_ui_oauth2_redirect_url}
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in replaced
    ]
    asset_version = version("fastapi-offline")

    async def docs_page(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        page = PAGE.format(
            title=html.escape(f"{title} - API docs"),
            base=html.escape(root + docs_url),
            version=asset_version,
            openapi_url=html.escape(root + openapi_url),
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

    async def init_script(request: Request) -> Response:
        return Response(
            INIT_SCRIPT, media_type="text/javascript", headers={"Cache-Control": IMMUTABLE}
        )

    def asset_endpoint(name: str, media_type: str) -> Route:
        async def asset(request: Request) -> Response:
            content = await _asset_bytes(name)
            return Response(content, media_type=media_type, headers={"Cache-Control": IMMUTABLE})

        return Route(f"{docs_url}/{name}", asset, methods=["GET"], include_in_schema=False)

    # First, so that a catch-all route added later (the console) cannot shadow them.
    app.router.routes[:0] = [
        Route(docs_url, docs_page, methods=["GET"], include_in_schema=False),
        Route(f"{docs_url}/swagger-init.js", init_script, methods=["GET"], include_in_schema=False),
        *(asset_endpoint(name, media_type) for name, media_type in ASSET_TYPES.items()),
    ]
