"""The receiver in docs/webhooks.md works: it accepts Assay's messages and refuses others."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from assay.webhooks.signing import message_body, message_id, new_secret, signed_headers

PAGE = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _receiver(monkeypatch: pytest.MonkeyPatch, secret: str) -> dict[str, Any]:
    [code] = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
    monkeypatch.setenv("ASSAY_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {"__name__": "docs_receiver"}
    exec(compile(code, str(PAGE), "exec"), namespace)  # noqa: S102 - our own page
    return namespace


def test_the_documented_receiver_accepts_a_signed_message_once_and_refuses_a_forged_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_secret()
    receiver = _receiver(monkeypatch, secret)
    body = message_body("job.succeeded", datetime.now(UTC), {"job_id": "j-7"})
    headers = signed_headers([secret], message_id(uuid.uuid4()), datetime.now(UTC), body)
    assert receiver["handle"](body, headers) == 204
    assert '"job_id": "j-7"' in capsys.readouterr().out
    assert receiver["handle"](body, headers) == 200  # the retry of a handled message
    forged = signed_headers([new_secret()], message_id(uuid.uuid4()), datetime.now(UTC), body)
    assert receiver["handle"](body, forged) == 400
