from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from assay.app import create_app
from assay.core.logging import (
    REDACTED,
    configure_logging,
    escape_control_characters,
    get_logger,
    redact_sensitive_values,
)
from assay.settings import Settings

from ..conftest import new_secret


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def _run_requests(
    settings: Settings, requests: list[tuple[str, str, dict[str, str], bytes]]
) -> list[httpx.Response]:
    app = create_app(settings)

    @app.post("/probe/login")
    async def login(body: dict[str, str]) -> dict[str, bool]:
        get_logger("assay.test").info("login_attempt", email=body.get("email"))
        return {"ok": True}

    responses = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for method, path, headers, content in requests:
                responses.append(await http.request(method, path, headers=headers, content=content))
    return responses


async def test_one_json_line_per_request_with_the_documented_fields(
    settings_factory: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_factory(log_format="json")
    [response] = await _run_requests(settings, [("GET", "/nowhere/42", {}, b"")])
    lines = [
        line for line in _json_lines(capsys.readouterr().out) if line.get("event") == "request"
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET"
    assert line["route"] == "<unmatched>"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["client"] == "127.0.0.1"
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["level"] == "info"
    assert str(line["timestamp"]).endswith("Z")


async def test_route_template_not_raw_path_is_logged(
    settings_factory: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_factory(log_format="json")
    app = create_app(settings)

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await http.get("/things/12345")
    [line] = [x for x in _json_lines(capsys.readouterr().out) if x.get("event") == "request"]
    assert line["route"] == "/things/{thing_id}"


async def test_well_formed_request_id_is_echoed_and_malformed_one_replaced(
    settings_factory: Callable[..., Settings],
) -> None:
    good = "req-2026-11-23-abcdef"
    first, second = await _run_requests(
        settings_factory(),
        [
            ("GET", "/livez", {"x-request-id": good}, b""),
            ("GET", "/livez", {"x-request-id": "bad id\twith\ncontrol"}, b""),
        ],
    )
    assert first.headers["x-request-id"] == good
    assert second.headers["x-request-id"] != "bad id\twith\ncontrol"
    assert len(second.headers["x-request-id"]) == 32


async def test_probes_are_not_logged_at_info(
    settings_factory: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    await _run_requests(
        settings_factory(log_format="json"),
        [("GET", "/livez", {}, b""), ("GET", "/readyz", {}, b"")],
    )
    assert [x for x in _json_lines(capsys.readouterr().out) if x.get("event") == "request"] == []


async def test_credentials_never_reach_the_log(
    settings_factory: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    password, token, api_key, cookie = new_secret(), new_secret(), new_secret(), new_secret()
    settings = settings_factory(log_format="json", debug=True)
    body = json.dumps({"email": "ada@example.org", "password": password}).encode()
    await _run_requests(
        settings,
        [
            (
                "POST",
                "/probe/login",
                {
                    "authorization": f"Bearer {token}",
                    "x-api-key": api_key,
                    "cookie": f"session={cookie}",
                    "content-type": "application/json",
                },
                body,
            )
        ],
    )
    get_logger("assay.test").info("explicit", password=password, api_key=api_key)
    out = capsys.readouterr().out
    assert "login_attempt" in out
    for secret in (password, token, api_key, cookie):
        assert secret not in out
    for value in (
        settings.token_signing_key,
        settings.session_secret,
        settings.encryption_key,
    ):
        assert value is not None
        assert value.get_secret_value() not in out


def test_sensitive_keys_are_redacted_at_any_depth() -> None:
    event = {
        "event": "x",
        "password": "p",
        "nested": {"Authorization": "Bearer t", "inner": [{"api_key": "k"}]},
        "count": 3,
    }
    result = redact_sensitive_values(None, "info", event)
    assert result["password"] == REDACTED
    assert result["nested"]["Authorization"] == REDACTED
    assert result["nested"]["inner"][0]["api_key"] == REDACTED
    assert result["count"] == 3


def test_control_characters_are_escaped_so_lines_cannot_be_forged() -> None:
    event = {"event": "login", "email": 'a@b.c\n{"level":"info","event":"admin_granted"}\x1b[2J'}
    result = escape_control_characters(None, "info", event)
    assert "\n" not in result["email"]
    assert "\x1b" not in result["email"]
    assert "\\x0a" in result["email"]


def test_console_format_in_development(
    settings_factory: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings_factory(env="development"))
    get_logger("assay.test").warning("readable", answer=42)
    out = capsys.readouterr().out
    assert "readable" in out
    assert "answer=42" in out
    assert not out.lstrip().startswith("{")


def _fail_with(message: str) -> None:
    raise RuntimeError(message)


def _log_a_failure(message: str) -> None:
    try:
        _fail_with(message)
    except RuntimeError:
        get_logger("assay.test").exception("unhandled_exception")


def test_console_tracebacks_keep_their_lines_and_escape_other_control_characters(
    settings_factory: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings_factory(env="development", log_format="console"))
    _log_a_failure("bad input \x1b[2J here")
    out = capsys.readouterr().out
    assert "Traceback (most recent call last):\n" in out
    assert "\\x0a" not in out
    assert "in _fail_with\n" in out
    assert "RuntimeError: bad input \\x1b[2J here" in out
    assert "\x1b" not in out


def test_json_tracebacks_stay_on_one_line_and_decode_to_the_full_traceback(
    settings_factory: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings_factory(log_format="json"))
    _log_a_failure('forged\n{"event": "admin_granted"}')
    events = _json_lines(capsys.readouterr().out)
    assert [x for x in events if x["event"] == "admin_granted"] == []
    lines = [x for x in events if x["event"] == "unhandled_exception"]
    assert len(lines) == 1
    traceback_text = str(lines[0]["exception"])
    assert traceback_text.startswith("Traceback (most recent call last):\n")
    assert "in _fail_with" in traceback_text
    assert traceback_text.rstrip().endswith('RuntimeError: forged\n{"event": "admin_granted"}')
