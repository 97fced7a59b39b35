"""The outbound guard: refused destinations never see a connection; allowed ones are
dialled at the checked address, redirects come back unfollowed, answers are bounded."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assay.outbound.errors import DestinationRefused, OutboundFailed
from assay.outbound.service import OutboundClient, OutboundPolicy, parse_networks
from tests.support.outbound import (
    Answer,
    LoopbackOnlyBackend,
    Receiver,
    StubResolver,
    self_signed_for,
)


@pytest.fixture
def network() -> LoopbackOnlyBackend:
    return LoopbackOnlyBackend()


@pytest.fixture
def resolver() -> StubResolver:
    return StubResolver()


@pytest.fixture
async def receiver(free_port: int) -> AsyncIterator[Receiver]:
    server = await Receiver().start(free_port)
    yield server
    await server.stop()


def client(
    resolver: StubResolver,
    network: LoopbackOnlyBackend,
    *,
    allowed: tuple[str, ...] = (),
    allow_http: bool = True,
    **limits: float,
) -> OutboundClient:
    policy = OutboundPolicy(
        allow_http=allow_http, allowed_networks=parse_networks(allowed), **limits
    )
    return OutboundClient(policy, resolver=resolver, network_backend=network)


@pytest.mark.parametrize(
    "host",
    [
        "loopback.test",
        "metadata.test",
        "internal.test",
        "v6-loopback.test",
        "mapped.test",
        "cgnat.test",
        "multicast.test",
        "link-local-v6.test",
        "unspecified.test",
        "mixed.test",
        "127.0.0.1",
        "169.254.169.254",
        "[::1]",
        "[::ffff:169.254.169.254]",
        "[fe80::1]",
        "[64:ff9b::a00:5]",  # NAT64 of 10.0.0.5
        "[2002:a00:5::1]",  # 6to4 of 10.0.0.5
        "[fec0::1]",  # site-local
    ],
)
async def test_a_name_or_address_that_is_not_public_is_refused_before_any_connection(
    host: str, resolver: StubResolver, network: LoopbackOnlyBackend
) -> None:
    with pytest.raises(DestinationRefused) as refused:
        await client(resolver, network).request("POST", f"https://{host}/hook", content=b"{}")
    assert refused.value.reason == "address_refused"
    assert network.attempts == []


async def test_the_shape_of_the_url_is_checked_first(
    resolver: StubResolver, network: LoopbackOnlyBackend
) -> None:
    guard = client(resolver, network, allow_http=False)
    cases = {
        "http://public.test/hook": "not_https",
        "ftp://public.test/hook": "url_invalid",
        "https://user:secret@public.test/hook": "url_invalid",
        "https://public.test/hook#part": "url_invalid",
        "/relative/hook": "url_invalid",
        "https://unknown.test/hook": "name_unresolved",
    }
    for url, reason in cases.items():
        with pytest.raises(DestinationRefused) as refused:
            await guard.request("POST", url)
        assert refused.value.reason == reason, url
    assert network.attempts == []
    assert resolver.lookups == ["unknown.test"]  # shape errors never reach the resolver


async def test_an_allowed_name_is_dialled_at_its_checked_address_with_its_own_host_header(
    resolver: StubResolver, network: LoopbackOnlyBackend, receiver: Receiver
) -> None:
    guard = client(resolver, network, allowed=("127.0.0.0/8",))
    answer = await guard.request(
        "POST", receiver.url(host="receiver.test"), content=b'{"a":1}', headers={"x-test": "1"}
    )
    assert (answer.status_code, answer.body, answer.truncated) == (200, b"ok", False)
    assert network.attempts == [("127.0.0.1", receiver.port)]
    [seen] = receiver.requests
    assert seen.headers["host"] == f"receiver.test:{receiver.port}"
    assert (seen.method, seen.path, seen.body) == ("POST", "/hook", b'{"a":1}')
    assert answer.elapsed_ms > 0


async def test_the_allow_list_opens_only_what_it_names(
    resolver: StubResolver, network: LoopbackOnlyBackend
) -> None:
    guard = client(resolver, network, allowed=("10.0.0.0/24",))
    assert str((await guard.check("https://internal.test/")).address) == "10.0.0.5"
    # IPv4-mapped forms of an allowed address are allowed too; other ranges stay shut.
    assert (await guard.check("https://mapped.test/")).address == ipaddress.ip_address(
        "::ffff:10.0.0.5"
    )
    for host in ("metadata.test", "loopback.test", "cgnat.test"):
        with pytest.raises(DestinationRefused):
            await guard.check(f"https://{host}/")


async def test_the_name_is_resolved_once_so_a_rebinding_answer_is_never_used(
    network: LoopbackOnlyBackend, receiver: Receiver
) -> None:
    answers = iter([["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"]])

    class Rebinding(StubResolver):
        async def __call__(self, host: str, port: int) -> list[ipaddress.IPv4Address]:  # type: ignore[override]
            self.lookups.append(host)
            return [ipaddress.IPv4Address(a) for a in next(answers)]

    rebinding = Rebinding()
    guard = OutboundClient(
        OutboundPolicy(allow_http=True, allowed_networks=parse_networks(["127.0.0.1/32"])),
        resolver=rebinding,
        network_backend=network,
    )
    answer = await guard.request("POST", receiver.url(host="rebind.test"), content=b"{}")
    assert answer.status_code == 200
    assert rebinding.lookups == ["rebind.test"]
    assert network.attempts == [("127.0.0.1", receiver.port)]
    # The next request resolves anew, and is refused: 10.0.0.5 is not allowed.
    with pytest.raises(DestinationRefused):
        await guard.request("POST", receiver.url(host="rebind.test"), content=b"{}")
    assert network.refused == []


async def test_redirects_come_back_unfollowed(
    resolver: StubResolver, network: LoopbackOnlyBackend, receiver: Receiver
) -> None:
    receiver.answers = [Answer(302, {"location": "http://169.254.169.254/latest"}, b"")]
    guard = client(resolver, network, allowed=("127.0.0.1/32",))
    answer = await guard.request("POST", receiver.url(), content=b"{}")
    assert answer.status_code == 302
    assert len(receiver.requests) == 1
    assert network.attempts == [("127.0.0.1", receiver.port)]


async def test_the_answer_is_read_up_to_the_limit_and_the_time_is_bounded(
    resolver: StubResolver, network: LoopbackOnlyBackend, receiver: Receiver
) -> None:
    receiver.answers = [Answer(200, {}, b"x" * 5000)]
    guard = client(resolver, network, allowed=("127.0.0.1/32",), max_response_bytes=1024)
    answer = await guard.request("GET", receiver.url())
    assert (len(answer.body), answer.truncated) == (1024, True)

    receiver.answers = [Answer(hang=True)]
    slow = client(resolver, network, allowed=("127.0.0.1/32",), timeout_seconds=0.3)
    with pytest.raises(OutboundFailed) as failed:
        await slow.request("GET", receiver.url())
    assert failed.value.reason == "timeout"


async def test_nothing_listening_is_an_unreachable_failure(
    resolver: StubResolver, network: LoopbackOnlyBackend, free_port: int
) -> None:
    guard = client(resolver, network, allowed=("127.0.0.1/32",))
    with pytest.raises(OutboundFailed) as failed:
        await guard.request("GET", f"http://127.0.0.1:{free_port}/")
    assert failed.value.reason == "unreachable"


async def test_tls_names_and_verifies_the_host_while_dialling_the_pinned_address(
    resolver: StubResolver, network: LoopbackOnlyBackend, free_port: int, tmp_path: Path
) -> None:
    certificate = self_signed_for("receiver.test", tmp_path)
    receiver = await Receiver().start(free_port, ssl_context=certificate.server_context)
    try:
        guard = OutboundClient(
            OutboundPolicy(allow_http=False, allowed_networks=parse_networks(["127.0.0.1/32"])),
            resolver=resolver,
            network_backend=network,
            ssl_context=certificate.client_context,
        )
        answer = await guard.request("POST", receiver.url(host="receiver.test", scheme="https"))
        assert answer.status_code == 200
        # loopback.test resolves to the same address, but the certificate is not for it.
        with pytest.raises(OutboundFailed):
            await guard.request("POST", receiver.url(host="loopback.test", scheme="https"))
        assert network.attempts == [("127.0.0.1", free_port)] * 2
    finally:
        await receiver.stop()


async def test_a_public_address_passes_the_guard_and_the_test_network_refuses_it(
    resolver: StubResolver, network: LoopbackOnlyBackend
) -> None:
    # The safety net itself: were a guard to let something through, it stops here.
    with pytest.raises(OutboundFailed):
        await client(resolver, network).request("POST", "https://public.test/hook")
    assert network.refused == [("93.184.215.14", 443)]


def test_production_refuses_an_allow_list_that_opens_everything_or_the_metadata_address() -> None:
    from assay.core.config_check import production_problems
    from assay.settings import Settings

    def problems(networks: list[str]) -> list[str]:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, env="production", outbound_allowed_networks=networks
        )
        return [p for p in production_problems(settings) if "OUTBOUND" in p]

    assert problems(["10.20.0.0/16", "fd00:20::/64"]) == []
    assert "opens every address" in problems(["0.0.0.0/0"])[0]
    assert "metadata" in problems(["169.254.0.0/16"])[0]
    assert "metadata" in problems(["fd00::/8"])[0]


async def test_plain_http_can_be_kept_to_loopback(
    resolver: StubResolver, network: LoopbackOnlyBackend
) -> None:
    policy = OutboundPolicy(
        allow_http=True,
        allowed_networks=parse_networks(["127.0.0.0/8", "10.0.0.0/8"]),
        http_networks=parse_networks(["127.0.0.0/8"]),
    )
    guard = OutboundClient(policy, resolver=resolver, network_backend=network)
    await guard.check("http://loopback.test/")
    with pytest.raises(DestinationRefused) as refused:
        await guard.check("http://internal.test/")
    assert refused.value.reason == "not_https"
    await guard.check("https://internal.test/")
