"""docs/client.md runs as written against a live Assay; the client README's examples parse."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.clients.live import LiveServer, Tenant
from tests.clients.support import batch_rows, csv_bytes

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "client.md"
README = REPO / "clients" / "python" / "README.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _python_blocks(path: Path) -> list[str]:
    return _BLOCK.findall(path.read_text(encoding="utf-8"))


def test_the_guide_is_linked_from_the_index() -> None:
    assert "(client.md)" in (REPO / "docs" / "index.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("block", _python_blocks(README))
def test_the_readme_examples_are_python(block: str) -> None:
    ast.parse(block, feature_version=(3, 10))


def test_the_guide_runs_as_written(
    live: LiveServer, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("rows.csv").write_bytes(csv_bytes(batch_rows(20)))
    namespace: dict[str, object] = {
        "ASSAY_URL": live.base_url,
        "API_KEY": tenant.api_key,
        "SIGNING_KEY": tenant.signing_key,
        "SIGNING_SECRET": tenant.signing_secret,
        "ENDPOINT_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }
    blocks = _python_blocks(GUIDE)
    assert len(blocks) >= 6
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), namespace)  # noqa: S102 - the docs' own code

    assert Path("result.csv").read_text(encoding="utf-8").startswith("row,status,score")
    receive = namespace["receive"]
    assert callable(receive)
    assert receive(b"{}", {"webhook-id": "x"}) == 400
