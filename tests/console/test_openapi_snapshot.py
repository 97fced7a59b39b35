"""The console's typed API client is generated from a committed snapshot of Assay's
OpenAPI document (frontend/openapi.json); this fails when the API has moved on without
it. `make console-api` regenerates both the snapshot and the client; `npm run
check:api` (run by `make test`) fails when the client no longer matches the snapshot."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.console_openapi import document, render

SNAPSHOT = Path(__file__).resolve().parents[2] / "frontend" / "openapi.json"


def test_the_console_snapshot_is_the_live_openapi_document() -> None:
    live = render(document())
    committed = SNAPSHOT.read_text(encoding="utf-8")
    if committed != live:
        before = set(json.loads(committed)["paths"])
        after = set(json.loads(live)["paths"])
        raise AssertionError(
            "frontend/openapi.json is out of date: run `make console-api` and commit it "
            f"(paths added: {sorted(after - before)}, removed: {sorted(before - after)})"
        )
