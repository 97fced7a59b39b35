"""Render docs/configuration.md from the Settings class (`make docs-config`)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from assay.settings import Settings

INTRO = """# Configuration reference

Assay reads its settings from, highest precedence first: environment variables
(`ASSAY_<NAME>`), a `.env` file in the working directory, and a TOML file named by
`ASSAY_CONFIG_FILE` (keys are the lower-case names below, e.g. `port = 8080`).
`ASSAY_CONFIG_FILE` itself may be set in the environment or in `.env`; a file it names
that does not exist or is not valid TOML stops every command with a message naming the
file (and the line). Lists accept JSON (`["a","b"]`) or a comma-separated string (`a,b`).
A value that is refused (a database URL Assay cannot use, a trusted proxy that is not an
address or network) is named by its environment variable, never echoed back.

`assay config show` prints the effective values with every secret masked;
`assay config check` lists every problem that would stop a production start.

In `development` and `test`, the three secrets are generated on first start into
`<data_dir>/secrets/` (directory mode 0700, files 0600) and reused afterwards. In
`production` they must be supplied (at least 32 bytes each, all different, no
placeholder) and Assay refuses to start, listing every problem, when one is missing.

This page is generated from the code by `make docs-config`; a test fails when a
setting is missing from it.

| Setting | Environment variable | Type | Default | Description |
| --- | --- | --- | --- | --- |
"""


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace(" | ", " or ")
    return text.replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        return "unset"
    if isinstance(value, Path):
        value = value.as_posix()
    return f"`{value!r}`" if not isinstance(value, str) else f"`{value}`"


def render() -> str:
    rows = [
        f"| `{name}` | `ASSAY_{name.upper()}` | {_type_name(field.annotation)} | "
        f"{_default(field)} | {field.description} |"
        for name, field in Settings.model_fields.items()
    ]
    return INTRO + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
