"""Outgoing mail: build a message, hand it over, deliver it off the request path.

Features queue a `Mail` with `after_commit(db, lambda: dispatcher.submit(mail))`; the
dispatcher delivers it in its own task, so a request never waits for (and its timing
never depends on) the SMTP server. Transports:

- SMTP through aiosmtplib when `smtp_host` is set;
- outside production without one, an outbox of `.eml` files in `<data_dir>/outbox`
  (listed by `assay dev outbox`);
- in production without one, nothing is written anywhere: delivery fails and is logged
  (and `assay config check` already refused the configuration).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid, parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Protocol

import aiosmtplib
import anyio
from prometheus_client import Counter

from assay.core.logging import get_logger
from assay.core.secrets_store import ensure_data_dir
from assay.settings import Settings

OUTBOX_DIRNAME = "outbox"
# Deliveries in flight at once; more wait their turn rather than open more connections.
_MAX_CONCURRENT_DELIVERIES = 4

MAIL_MESSAGES = Counter(
    "assay_mail_messages", "Outgoing mail, by transport and outcome.", ["transport", "outcome"]
)
log = get_logger("assay.mail")


class MailNotConfigured(RuntimeError):
    """Production has no SMTP server configured, and mail is never written to disk there."""


@dataclass(frozen=True, slots=True)
class Mail:
    """One plain-text message to one recipient."""

    to: str
    subject: str
    text: str


def _one_line(value: str) -> str:
    # Header values come partly from users (organisation names): no line breaks, no controls.
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())


def build_message(settings: Settings, mail: Mail) -> EmailMessage:
    """The RFC 5322 message for `mail`, from `smtp_from`; ValueError for a bad recipient."""
    _, sender = parseaddr(settings.smtp_from)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    # One plain addr-spec or a ValueError: a display name, a second address or a line
    # break smuggled into an account's email must not redirect the mail.
    message["To"] = Address(addr_spec=mail.to)
    message["Subject"] = _one_line(mail.subject)
    message["Date"] = formatdate(usegmt=True)
    # An explicit domain: make_msgid() would otherwise ask DNS for our host name.
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "assay.invalid")
    # RFC 3834: no vacation replies or bounces-of-auto-replies to a no-reply sender.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    return message


class MailTransport(Protocol):
    name: str

    async def deliver(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    """SMTP with the configured security; STARTTLS is required, never opportunistic."""

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None  # noqa: S101 - chosen by create_transport
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._username = settings.smtp_username
        self._password = settings.smtp_password
        self._tls = settings.smtp_tls
        self._timeout = settings.smtp_timeout_seconds

    async def deliver(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password.get_secret_value() if self._password else None,
            use_tls=self._tls == "tls",
            # False, not None: None lets aiosmtplib upgrade only when offered, which a
            # man in the middle can suppress.
            start_tls=self._tls == "starttls",
            timeout=self._timeout,
        )


class OutboxTransport:
    """Development and test: each message becomes a private `.eml` file."""

    name = "outbox"

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self.directory = data_dir / OUTBOX_DIRNAME

    async def deliver(self, message: EmailMessage) -> None:
        path = await anyio.to_thread.run_sync(self._write, message.as_bytes())
        log.info("mail_written_to_outbox", path=str(path))

    def _write(self, data: bytes) -> Path:
        ensure_data_dir(self._data_dir)
        # The files hold live reset and invitation links: owner-only, like the secrets.
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.directory.chmod(0o700)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{secrets.token_hex(4)}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path


class UnconfiguredTransport:
    name = "none"

    async def deliver(self, message: EmailMessage) -> None:
        raise MailNotConfigured("ASSAY_SMTP_HOST is not set")


def create_transport(settings: Settings) -> MailTransport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    if settings.is_production:
        return UnconfiguredTransport()
    return OutboxTransport(settings.data_dir)


class MailDispatcher:
    """Delivers submitted mail in background tasks; `aclose` waits for them at shutdown."""

    def __init__(self, settings: Settings, transport: MailTransport) -> None:
        self._settings = settings
        self.transport = transport
        self._tasks: set[asyncio.Task[None]] = set()
        # Made for the loop that delivers: an application whose lifespan stops and starts
        # again runs on a new loop, and a semaphore is bound to the loop it first waited on.
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _slots_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(_MAX_CONCURRENT_DELIVERIES))
        return self._slots[1]

    def submit(self, mail: Mail) -> None:
        """Start delivering `mail` and return at once; needs a running event loop."""
        try:
            message = build_message(self._settings, mail)
        except ValueError as exc:
            MAIL_MESSAGES.labels(self.transport.name, "refused").inc()
            log.error("mail_refused", reason=str(exc), subject=_one_line(mail.subject))  # noqa: TRY400
            return
        task = asyncio.get_running_loop().create_task(self._deliver(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message: EmailMessage) -> None:
        recipient_domain = str(message["To"]).rpartition("@")[2]
        async with self._slots_for(asyncio.get_running_loop()):
            try:
                await self.transport.deliver(message)
            except (aiosmtplib.SMTPException, OSError, MailNotConfigured) as exc:
                MAIL_MESSAGES.labels(self.transport.name, "failed").inc()
                # Expected failures need no traceback. The body holds a live token: only
                # the envelope's shape is logged.
                log.error(  # noqa: TRY400
                    "mail_failed",
                    transport=self.transport.name,
                    to_domain=recipient_domain,
                    subject=str(message["Subject"]),
                    error=f"{type(exc).__name__}: {exc}",
                )
                return
            # A bug here must not vanish inside a task nobody awaits.
            except Exception:
                MAIL_MESSAGES.labels(self.transport.name, "failed").inc()
                log.exception("mail_failed", transport=self.transport.name)
                return
        MAIL_MESSAGES.labels(self.transport.name, "sent").inc()
        log.info(
            "mail_sent",
            transport=self.transport.name,
            to_domain=recipient_domain,
            subject=str(message["Subject"]),
            message_id=str(message["Message-ID"]),
        )

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Return once every submitted message has been delivered or has failed."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, grace_seconds: float | None = None) -> None:
        """Give deliveries in flight up to `grace_seconds`, then abandon the rest."""
        if not self._tasks:
            return
        limit = self._settings.smtp_timeout_seconds if grace_seconds is None else grace_seconds
        try:
            await asyncio.wait_for(self.wait_idle(), limit)
        except TimeoutError:
            abandoned = list(self._tasks)
            for task in abandoned:
                task.cancel()
            await asyncio.gather(*abandoned, return_exceptions=True)
            log.error("mail_abandoned_at_shutdown", count=len(abandoned))  # noqa: TRY400


# --- the development outbox ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    sent_at: datetime
    to: str
    subject: str
    path: Path


def outbox_directory(settings: Settings) -> Path:
    return settings.data_dir / OUTBOX_DIRNAME


def list_outbox(directory: Path) -> list[OutboxEntry]:
    """Messages in the outbox, newest first."""
    if not directory.is_dir():
        return []
    entries = []
    parser = BytesParser(policy=default_policy)
    for path in directory.glob("*.eml"):
        with path.open("rb") as handle:
            headers = parser.parse(handle, headersonly=True)
        try:
            sent_at = parsedate_to_datetime(str(headers["Date"])).astimezone(UTC)
        except (TypeError, ValueError):
            sent_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        entries.append(
            OutboxEntry(
                sent_at=sent_at,
                to=str(headers["To"] or ""),
                subject=str(headers["Subject"] or ""),
                path=path,
            )
        )
    # File names start with a microsecond timestamp: they order messages the Date
    # header (whole seconds) cannot.
    return sorted(entries, key=lambda entry: entry.path.name, reverse=True)
