"""Properties over generated input: canonical values read as themselves, and no text
makes canonicalise fail with anything but IndicatorRefused."""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.indicators.service import (
    MAX_INPUT_LENGTH,
    IndicatorRefused,
    canonicalise,
)

# Enough examples to find a regression, few enough to keep this file near a second.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_LABEL_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-äöüßéçñ"
labels = st.text(_LABEL_ALPHABET, min_size=1, max_size=20).filter(
    lambda label: not label.startswith("-") and not label.endswith("-")
)
suffixes = st.sampled_from(["com", "de", "co.uk", "org", "fr", "xn--p1ai", "рф", "com.au"])
domains = st.builds(
    lambda names, suffix: ".".join([*names, suffix]),
    st.lists(labels, min_size=1, max_size=3),
    suffixes,
)
addresses = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: address.compressed),
    st.ip_addresses(v=6).map(lambda address: f"[{address.exploded.upper()}]"),
)
hashes = st.one_of(
    *(
        st.binary(min_size=size, max_size=size).map(lambda digest: digest.hex().upper())
        for size in (16, 20, 32)
    )
)
paths = st.text("abcXYZ019-._~/%?=&#", max_size=30).map(lambda rest: f"/{rest}")
urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "HTTPS", "ftp"]),
    domains,
    st.sampled_from(["", ":80", ":443", ":8080"]),
    paths,
)
defang_marks = st.sampled_from(["[.]", "(.)", "{.}", "[dot]", "(dot)"])
indicators = st.one_of(domains, addresses, hashes, urls)


def _refused_or_canonical(text: str) -> tuple[str, str] | None:
    try:
        indicator = canonicalise(text)
    except IndicatorRefused:
        return None
    return indicator.type, indicator.value


@FAST
@given(indicators)
def test_a_canonical_value_canonicalises_to_itself(text: str) -> None:
    first = _refused_or_canonical(text)
    if first is None:
        return
    kind, value = first
    assert _refused_or_canonical(value) == (kind, value)


@FAST
@given(domains, defang_marks)
def test_a_defanged_domain_reads_as_the_plain_one(name: str, mark: str) -> None:
    assert _refused_or_canonical(name.replace(".", mark)) == _refused_or_canonical(name)


@FAST
@given(st.ip_addresses(v=4))
def test_every_ipv4_address_is_read_or_refused_as_python_classifies_it(
    address: ipaddress.IPv4Address,
) -> None:
    result = _refused_or_canonical(str(address))
    if address.is_global and not address.is_multicast:
        assert result == ("ipv4", str(address))
    else:
        assert result is None


@FAST
@given(st.text(max_size=MAX_INPUT_LENGTH + 50))
def test_arbitrary_text_is_read_or_refused_never_crashes(text: str) -> None:
    _refused_or_canonical(text)


@FAST
@given(st.text(alphabet="[](){}.:/@ hxXtpsdoDOTa\\^-,1", max_size=300))
def test_text_made_of_defanging_marks_is_read_or_refused(text: str) -> None:
    _refused_or_canonical(text)
