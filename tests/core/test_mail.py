"""Outgoing mail plumbing: transports, the dispatcher, and after-commit hand-over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import text

from assay.core.after_commit import after_commit, pending_callbacks
from assay.core.db import Database
from assay.core.mail import (
    Mail,
    MailDispatcher,
    OutboxTransport,
    SmtpTransport,
    UnconfiguredTransport,
    build_message,
    create_transport,
    list_outbox,
)
from assay.settings import Settings

from ..conftest import new_secret


class _Collector:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 OK"


class _Authenticator:
    def __init__(self, password: str) -> None:
        self.password = password
        self.logins: list[str] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.password.decode() == self.password
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture
def smtp(free_port: int) -> Iterator[tuple[int, _Collector, _Authenticator]]:
    collector = _Collector()
    authenticator = _Authenticator(new_secret())
    # A plain server (no STARTTLS offered) that accepts AUTH without TLS, for the test only.
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=free_port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield free_port, collector, authenticator
    finally:
        controller.stop()


def _mail(to: str = "someone@example.org") -> Mail:
    return Mail(to=to, subject="Hello", text="Body text.\n")


async def test_smtp_transport_authenticates_and_delivers(
    settings_factory: Callable[..., Settings], smtp: tuple[int, _Collector, _Authenticator]
) -> None:
    port, collector, authenticator = smtp
    settings = settings_factory(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
        smtp_username="assay-relay",
        smtp_password=authenticator.password,
        smtp_from="Assay <noreply@assay.example.org>",
    )
    dispatcher = MailDispatcher(settings, create_transport(settings))
    assert isinstance(dispatcher.transport, SmtpTransport)
    dispatcher.submit(_mail())
    await dispatcher.wait_idle()
    assert authenticator.logins == ["assay-relay"]
    [envelope] = collector.envelopes
    assert envelope.mail_from == "noreply@assay.example.org"
    assert envelope.rcpt_tos == ["someone@example.org"]


async def test_starttls_is_required_never_opportunistic(
    settings_factory: Callable[..., Settings], smtp: tuple[int, _Collector, _Authenticator]
) -> None:
    port, collector, _ = smtp
    settings = settings_factory(smtp_host="127.0.0.1", smtp_port=port)
    assert settings.smtp_tls == "starttls"
    with pytest.raises(aiosmtplib.SMTPException, match="STARTTLS"):
        await SmtpTransport(settings).deliver(build_message(settings, _mail()))
    # Through the dispatcher, the failure is logged and nothing is delivered in clear.
    dispatcher = MailDispatcher(settings, SmtpTransport(settings))
    dispatcher.submit(_mail())
    await dispatcher.wait_idle()
    assert collector.envelopes == []


def test_header_values_cannot_add_headers_or_recipients(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    message = build_message(
        settings, Mail(to="a@example.org", subject="Hi\r\nBcc: c@evil.example", text="x")
    )
    assert message["Bcc"] is None
    assert "\n" not in str(message["Subject"])
    assert message["Auto-Submitted"] == "auto-generated"
    assert str(message["Message-ID"]).endswith("@localhost>")
    for recipient in (
        "a@example.org\r\nBcc: b@evil.example",
        "victim<attacker@evil.example>",
        "a,b@example.org",
    ):
        with pytest.raises(ValueError, match=r"."):
            build_message(settings, Mail(to=recipient, subject="Hi", text="x"))


async def test_a_bad_recipient_is_refused_not_sent(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    transport = OutboxTransport(settings.data_dir)
    dispatcher = MailDispatcher(settings, transport)
    dispatcher.submit(Mail(to="victim<attacker@evil.example>", subject="Hi", text="x"))
    await dispatcher.wait_idle()
    assert list_outbox(transport.directory) == []


def test_smtp_from_must_be_one_address(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="smtp_from"):
        settings_factory(smtp_from="not an address")
    with pytest.raises(ValueError, match="smtp_from"):
        settings_factory(smtp_from="a@example.org\r\nBcc: b@example.org")


async def test_production_without_smtp_writes_nothing_anywhere(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(env="production")
    transport = create_transport(settings)
    assert isinstance(transport, UnconfiguredTransport)
    dispatcher = MailDispatcher(settings, transport)
    dispatcher.submit(_mail())
    await dispatcher.wait_idle()
    assert not (settings.data_dir / "outbox").exists()


async def test_outbox_lists_newest_first(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    transport = create_transport(settings)
    assert isinstance(transport, OutboxTransport)
    dispatcher = MailDispatcher(settings, transport)
    for n in range(3):
        dispatcher.submit(Mail(to=f"user{n}@example.org", subject=f"Message {n}", text="x"))
        await dispatcher.wait_idle()
    entries = list_outbox(transport.directory)
    assert [e.subject for e in entries] == ["Message 2", "Message 1", "Message 0"]
    assert entries[0].to == "user2@example.org"


class _StuckTransport:
    name = "stuck"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def deliver(self, message: EmailMessage) -> None:
        self.started.set()
        await asyncio.sleep(3600)


async def test_shutdown_waits_for_deliveries_then_abandons_them(
    settings_factory: Callable[..., Settings],
) -> None:
    transport = _StuckTransport()
    dispatcher = MailDispatcher(settings_factory(), transport)
    dispatcher.submit(_mail())
    await transport.started.wait()
    assert dispatcher.in_flight == 1
    await dispatcher.aclose(grace_seconds=0.05)
    assert dispatcher.in_flight == 0


async def test_after_commit_runs_on_commit_only(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    database = Database(settings_factory(database_url=database_url))
    calls: list[str] = []
    try:
        async with database.sessionmaker() as db:
            await db.execute(text("SELECT 1"))
            after_commit(db, lambda: calls.append("rolled back"))
            await db.rollback()
            assert pending_callbacks(db) == 0

            await db.execute(text("SELECT 1"))
            after_commit(db, lambda: calls.append("committed"))
            async with db.begin_nested():
                await db.execute(text("SELECT 1"))
            assert calls == []  # a savepoint is not the commit
            await db.commit()
            assert calls == ["committed"]

        async with database.sessionmaker() as db:
            await db.execute(text("SELECT 1"))
            after_commit(db, lambda: calls.append("closed"))
        assert calls == ["committed"]

        async with database.sessionmaker() as db:

            def failing() -> None:
                raise RuntimeError("boom")

            after_commit(db, failing)
            after_commit(db, lambda: calls.append("after a failing hook"))
            await db.commit()
        assert calls == ["committed", "after a failing hook"]
    finally:
        await database.dispose()


class _SlowTransport:
    name = "slow"

    def __init__(self) -> None:
        self.delivered = 0

    async def deliver(self, message: EmailMessage) -> None:
        await asyncio.sleep(0.01)
        self.delivered += 1


def test_a_dispatcher_delivers_again_on_a_new_event_loop(
    settings_factory: Callable[..., Settings],
) -> None:
    # A lifespan that stops and starts again runs on a new loop; more messages than
    # delivery slots make the deliveries wait on the slots in both.
    transport = _SlowTransport()
    dispatcher = MailDispatcher(settings_factory(), transport)

    async def burst() -> None:
        for n in range(20):
            dispatcher.submit(Mail(to=f"user{n}@example.org", subject="Burst", text="x"))
        await dispatcher.wait_idle()

    asyncio.run(burst())
    asyncio.run(burst())
    assert transport.delivered == 40
