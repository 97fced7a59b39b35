"""Without an SMTP server (development, test), mail lands in a private outbox that
`assay dev outbox` lists."""

from __future__ import annotations

import stat
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from assay.auth.deps import IdentityContext
from assay.cli import app as cli
from assay.core.mail import OutboxTransport
from assay.settings import Settings
from tests.support.identity import MakeMember, Member, body_of, link_of, login, strong_password


async def test_outbox_receives_private_eml_files_that_the_cli_lists(
    client: httpx.AsyncClient,
    identity: IdentityContext,
    settings: Settings,
    make_member: MakeMember,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.smtp_host is None
    assert isinstance(identity.mail.transport, OutboxTransport)
    first, second = await make_member(), await make_member()
    for member in (first, second):
        response = await client.post("/v1/auth/password/forgot", json={"email": member.email})
        assert response.status_code == 202
    await identity.mail.wait_idle()

    outbox = settings.data_dir / "outbox"
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 2
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)

    monkeypatch.setenv("ASSAY_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(cli, ["dev", "outbox"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Mail is delivered in the background, so which of the two was written last is the
    # files' to say, not the requests' order. Newest first: the later file heads the list.
    parser = BytesParser(policy=default_policy)
    older, newer = (parser.parsebytes(f.read_bytes()) for f in files)
    assert {older["To"], newer["To"]} == {first.email, second.email}
    assert newer["To"] in lines[0]
    assert "Reset your Assay password" in lines[0]
    assert lines[1].strip() == str(files[1])
    assert older["To"] in lines[2]
    assert lines[3].strip() == str(files[0])
    assert lines[0][:4].isdigit()  # starts with the time

    # The file is the real message: its link resets the password.
    message = older if older["To"] == first.email else newer
    _, token = link_of(message)
    assert token in body_of(message)
    new_password = strong_password()
    reset = await client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": new_password}
    )
    assert reset.status_code == 204
    await login(client, Member(first.email, new_password, first.user_id, None, None))


def test_an_empty_outbox_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_DATA_DIR", str(tmp_path / "nothing"))
    result = CliRunner().invoke(cli, ["dev", "outbox"])
    assert result.exit_code == 0
    assert "The outbox is empty" in result.stdout
