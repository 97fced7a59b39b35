"""Outbound test doubles: a stub resolver, a network layer that only ever dials loopback,
and a real HTTP receiver on loopback whose answers a test scripts.

No test that uses these can send a packet off this machine: every connection goes
through `LoopbackOnlyBackend`, which refuses (and records) any other address, so a
broken guard fails the test instead of reaching out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from assay.outbound.service import IPAddress

# Names the tests resolve, and what to: the classic SSRF targets.
STUB_NAMES: dict[str, list[str]] = {
    "receiver.test": ["127.0.0.1"],
    "loopback.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "internal.test": ["10.0.0.5"],
    "v6-loopback.test": ["::1"],
    "mapped.test": ["::ffff:10.0.0.5"],
    "cgnat.test": ["100.64.12.1"],
    "multicast.test": ["224.0.0.251"],
    "link-local-v6.test": ["fe80::1"],
    "unspecified.test": ["0.0.0.0"],
    # One public, one private: the private one alone refuses the name.
    "mixed.test": ["93.184.215.14", "10.0.0.5"],
    # Public: allowed by the guard, and refused by the loopback-only network layer.
    "public.test": ["93.184.215.14"],
}


@dataclass
class StubResolver:
    """Resolves from a table; counts lookups. Unknown names do not resolve."""

    names: dict[str, list[str]] = field(default_factory=lambda: dict(STUB_NAMES))
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self.names:
            raise OSError(f"stub resolver: {host} is unknown")
        return [ipaddress.ip_address(a) for a in self.names[host]]


class LoopbackOnlyBackend(httpcore.AsyncNetworkBackend):
    """Dials loopback addresses only; records every attempt, refuses any other."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.attempts: list[tuple[str, int]] = []
        self.refused: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append((host, port))
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False  # a name: the guard should have pinned an address
        if not loopback:
            self.refused.append((host, port))
            raise httpcore.ConnectError(f"test network refuses {host}:{port}")
        return await self.inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.refused.append((path, 0))
        raise httpcore.ConnectError("test network refuses Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    # Never answer (the client's timeout is then what ends the request).
    hang: bool = False


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Script = Callable[[Received], Answer]


class Receiver:
    """A small HTTP/1.1 server on loopback: records requests, answers as scripted.

    `answers` are given in order, the last one repeated; `respond` overrides them with a
    function of the request (e.g. one that verifies a signature).
    """

    def __init__(self, answers: Iterable[Answer] = (Answer(),)) -> None:
        self.answers = list(answers)
        self.respond: Script | None = None
        self.requests: list[Received] = []
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._hung: list[asyncio.Event] = []
        self.port = 0

    async def start(self, port: int, ssl_context: ssl.SSLContext | None = None) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, ssl=ssl_context)
        self.port = port
        return self

    async def stop(self) -> None:
        for hung in self._hung:
            hung.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str = "/hook", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def _next_answer(self, request: Received) -> Answer:
        if self.respond is not None:
            return self.respond(request)
        index = min(len(self.requests) - 1, len(self.answers) - 1)
        return self.answers[index]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            request = Received(method, path, headers, body)
            self.requests.append(request)
            self.arrived.set()
            answer = self._next_answer(request)
            if answer.hang:
                hung = asyncio.Event()
                self._hung.append(hung)
                await hung.wait()
                return
            reason = "OK" if answer.status < 400 else "Error"
            out = [f"HTTP/1.1 {answer.status} {reason}"]
            sent = {"content-length": str(len(answer.body)), "connection": "close"}
            sent.update({k.lower(): v for k, v in answer.headers.items()})
            out.extend(f"{k}: {v}" for k, v in sent.items())
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + answer.body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return
        finally:
            writer.close()


@dataclass(frozen=True)
class TestCertificate:
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext


def self_signed_for(name: str, directory: Path) -> TestCertificate:
    """A certificate for `name` (and nothing else), and a client context trusting only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return TestCertificate(server, client)
