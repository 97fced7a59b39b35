"""Print Assay's OpenAPI document as the console's snapshot (`make console-api`).

    python scripts/console_openapi.py > frontend/openapi.json

Sorted keys and a fixed indent, so the committed snapshot changes only when the API
does; tests/console/test_openapi_snapshot.py fails when it no longer matches, and
`npm run check:api` when the typed client no longer matches the snapshot.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from assay.app import create_app
from assay.settings import Settings


def document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(env="test", data_dir=Path(data_dir))
        openapi: dict[str, Any] = create_app(settings).openapi()
    return openapi


def render(openapi: dict[str, Any]) -> str:
    # The release is not part of the API's shape: the snapshot must not change with it
    # (nor with how Assay was installed: a source tree without metadata says 0.0.0+source).
    shaped = {**openapi, "info": {**openapi["info"], "version": "snapshot"}}
    return json.dumps(shaped, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(document()))
