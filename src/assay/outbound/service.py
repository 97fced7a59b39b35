"""Outbound requests to user-given URLs, checked and pinned to the checked address.

The check and the connection use the same resolution: `OutboundClient.request` resolves
the host once, refuses the URL when any of its addresses is loopback, private,
link-local, multicast, reserved or otherwise not public (unless the operator's
allow-list names it), and then dials that checked address itself. The host name still
goes in the Host header and in TLS (SNI and certificate verification), so a name that
resolves to something else a moment later (DNS rebinding) changes nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpcore
import httpx

from assay.core.logging import get_logger
from assay.outbound.addresses import IPAddress, IPNetwork, allowed_by, parse_networks, refusal
from assay.outbound.errors import DestinationRefused, OutboundFailed
from assay.settings import Settings

__all__ = [
    "Destination",
    "IPAddress",
    "IPNetwork",
    "OutboundClient",
    "OutboundPolicy",
    "OutboundResponse",
    "Resolver",
    "check_destination",
    "parse_destination_url",
    "parse_networks",
    "system_resolver",
]

log = get_logger("assay.outbound")

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
_DEFAULT_PORTS: typing.Final = {"https": 443, "http": 80}


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses the operating system's resolver gives for `host`."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        # An IPv6 link-local answer may carry a zone ("fe80::1%eth0").
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where and how outbound requests may go."""

    allow_http: bool
    allowed_networks: tuple[IPNetwork, ...] = ()
    # Where allow_http holds, plain http only to these addresses (None: to any).
    http_networks: tuple[IPNetwork, ...] | None = None
    connect_timeout_seconds: float = 5.0
    timeout_seconds: float = 15.0
    max_response_bytes: int = 64 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        return cls(
            allow_http=not settings.is_production,
            allowed_networks=parse_networks(settings.outbound_allowed_networks),
            connect_timeout_seconds=settings.outbound_connect_timeout_seconds,
            timeout_seconds=settings.outbound_timeout_seconds,
            max_response_bytes=settings.outbound_max_response_bytes,
        )


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL whose every address was checked; requests go to `address` only."""

    url: httpx.URL
    host: str  # ASCII (IDNA) form, as the connection layer sees it
    port: int
    address: IPAddress
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    status_code: int
    headers: httpx.Headers
    body: bytes  # at most the policy's max_response_bytes
    truncated: bool
    elapsed_ms: float


def parse_destination_url(url: str, *, allow_http: bool) -> httpx.URL:
    """The URL, if its shape may be called: https (http where allowed), a host, no userinfo."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise DestinationRefused("url_invalid", "not a valid URL") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.raw_host:
        raise DestinationRefused("url_invalid", "an absolute http(s) URL with a host is needed")
    if parsed.userinfo:
        # Credentials in a URL end up in logs and listings; use the signing secret.
        raise DestinationRefused("url_invalid", "credentials in the URL are not accepted")
    if parsed.fragment:
        raise DestinationRefused("url_invalid", "a fragment is never sent; remove it")
    if parsed.scheme == "http" and not allow_http:
        raise DestinationRefused("not_https", "the URL must use https")
    return parsed


async def check_destination(url: str, policy: OutboundPolicy, resolver: Resolver) -> Destination:
    """Parse and resolve `url` and check every address; raise DestinationRefused if not."""
    parsed = parse_destination_url(url, allow_http=policy.allow_http)
    host = parsed.raw_host.decode("ascii").lower()
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = list(await resolver(host, port))
        except (OSError, UnicodeError, ValueError):
            raise DestinationRefused("name_unresolved", f"{host} does not resolve") from None
    if not addresses:
        raise DestinationRefused("name_unresolved", f"{host} does not resolve")
    for address in addresses:
        why = refusal(address)
        if why is not None and not allowed_by(address, policy.allowed_networks):
            # The address itself goes to the log only: the client learns the kind.
            log.warning("outbound_destination_refused", host=host, address=str(address))
            raise DestinationRefused("address_refused", f"{host} resolves to {why}")
    if parsed.scheme == "http" and policy.http_networks is not None:
        plain = policy.http_networks
        if not all(allowed_by(address, plain) for address in addresses):
            raise DestinationRefused("not_https", "plain http is allowed to loopback only")
    return Destination(parsed, host, port, addresses[0], tuple(addresses))


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Dials the checked address for the checked host and port, and nothing else."""

    def __init__(self, destination: Destination, inner: httpcore.AsyncNetworkBackend) -> None:
        self._destination = destination
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host.strip("[]").lower() != self._destination.host or port != self._destination.port:
            msg = "connection refused: not the checked destination"
            raise httpcore.ConnectError(msg)
        return await self._inner.connect_tcp(
            str(self._destination.address),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        msg = "connection refused: outbound requests never use Unix sockets"
        raise httpcore.ConnectError(msg)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        destination: Destination,
        backend: httpcore.AsyncNetworkBackend,
        ssl_context: ssl.SSLContext,
    ) -> None:
        super().__init__(verify=ssl_context, trust_env=False, retries=0)
        # httpx takes no network backend, so its pool is replaced by one that dials the
        # checked address; TLS still names (SNI) and verifies the URL's host.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=1,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinnedBackend(destination, backend),
        )


class OutboundClient:
    """Makes checked, pinned, bounded requests; one connection per request."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver = system_resolver,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self._backend = network_backend or httpcore.AnyIOBackend()
        # Certificate verification always on; a test may trust its own CA, never none.
        self._ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)

    def with_policy(self, policy: OutboundPolicy) -> OutboundClient:
        """The same resolver, network and trust, under another policy (a provider's own
        timeouts and response size)."""
        return OutboundClient(
            policy,
            resolver=self.resolver,
            network_backend=self._backend,
            ssl_context=self._ssl_context,
        )

    async def check(self, url: str) -> Destination:
        return await check_destination(url, self.policy, self.resolver)

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> OutboundResponse:
        """Send one request to a checked destination; redirects come back as they are.

        Raises DestinationRefused before any connection when the URL may not be called,
        and OutboundFailed when the destination cannot be reached or answers too slowly.
        """
        destination = await self.check(url)
        policy = self.policy
        transport = _PinnedTransport(destination, self._backend, self._ssl_context)
        timeout = httpx.Timeout(policy.timeout_seconds, connect=policy.connect_timeout_seconds)
        sent_headers = {"accept-encoding": "identity", **(headers or {})}
        started = time.perf_counter()
        body = bytearray()
        truncated = False
        try:
            async with (
                asyncio.timeout(policy.timeout_seconds),
                httpx.AsyncClient(
                    transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
                ) as client,
                client.stream(
                    method, destination.url, content=content, data=data, headers=sent_headers
                ) as response,
            ):
                async for chunk in response.aiter_raw():
                    room = policy.max_response_bytes - len(body)
                    body.extend(chunk[:room])
                    if len(chunk) > room:
                        truncated = True
                        break
        except TimeoutError:
            raise OutboundFailed("timeout", "no complete answer in time") from None
        except httpx.TimeoutException:
            raise OutboundFailed("timeout", "no complete answer in time") from None
        except httpx.HTTPError as exc:
            raise OutboundFailed("unreachable", type(exc).__name__) from None
        return OutboundResponse(
            status_code=response.status_code,
            headers=response.headers,
            body=bytes(body),
            truncated=truncated,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )
