"""Indicators as people paste them, read to one canonical value, or refused by code."""

from __future__ import annotations

import pytest

from assay.indicators.service import (
    MAX_INPUT_LENGTH,
    IndicatorRefused,
    IndicatorType,
    RefusalCode,
    canonicalise,
)

URL = IndicatorType.URL
DOMAIN = IndicatorType.DOMAIN
IPV4 = IndicatorType.IPV4
IPV6 = IndicatorType.IPV6
EMAIL = IndicatorType.EMAIL

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# (given, type, canonical value, id): forms seen in threat reports, feeds and chat.
READ_AS = [
    ("hxxps://evil-example[.]com/path", URL, "https://evil-example.com/path", "hxxps-bracket-dot"),
    ("hxxp://evil-example[.]com", URL, "http://evil-example.com", "hxxp-no-path"),
    ("hXXps://evil-example[.]com/a", URL, "https://evil-example.com/a", "hXXps"),
    ("HXXPS://EVIL-EXAMPLE[.]COM/Path", URL, "https://evil-example.com/Path", "upper-HXXPS"),
    ("h**p://evil-example[.]com/", URL, "http://evil-example.com/", "h-stars-p"),
    ("hxxp[:]//evil-example[.]com/x", URL, "http://evil-example.com/x", "bracket-colon"),
    ("hxxps[://]evil-example[.]com", URL, "https://evil-example.com", "bracket-colon-slashes"),
    ("fxp://files[.]evil-example[.]org/a.zip", URL, "ftp://files.evil-example.org/a.zip", "fxp"),
    ("evil-example[.]com[/]login", URL, "http://evil-example.com/login", "bracket-slash"),
    ("evil-example.com/login.php", URL, "http://evil-example.com/login.php", "no-scheme-path"),
    ("user@evil-example.com/x", URL, "http://user@evil-example.com/x", "no-scheme-userinfo"),
    ("[2606:4700::1111]:8080/x", URL, "http://[2606:4700::1111]:8080/x", "no-scheme-ipv6"),
    ("evil-example.com:8443", URL, "http://evil-example.com:8443", "no-scheme-port"),
    ("HTTP://Evil-Example.COM:80/A?B=C#D", URL, "http://evil-example.com/A?B=C#D", "port-80"),
    ("https://evil-example.com:443/", URL, "https://evil-example.com/", "port-443"),
    ("https://evil-example.com:8443/", URL, "https://evil-example.com:8443/", "port-kept"),
    ("https://evil-example.com./x", URL, "https://evil-example.com/x", "url-trailing-dot"),
    ("hxxp://[2606:4700::1111]/x", URL, "http://[2606:4700::1111]/x", "url-ipv6"),
    ("hxxp://8.8.8[.]8:8080/p", URL, "http://8.8.8.8:8080/p", "url-ipv4-port"),
    ("https://bücher.de/straße", URL, "https://xn--bcher-kva.de/straße", "url-idn-host"),
    ("https://user:pw@evil-example.com/", URL, "https://user:pw@evil-example.com/", "userinfo"),
    ("https://evil-example.com/a^b", URL, "https://evil-example.com/a^b", "caret-in-path"),
    ("1.2.3[.]4", IPV4, "1.2.3.4", "ipv4-one-bracket"),
    ("8[.]8[.]8[.]8", IPV4, "8.8.8.8", "ipv4-all-brackets"),
    ("8(.)8(.)4(.)4", IPV4, "8.8.4.4", "ipv4-parens"),
    ("8 . 8 . 8 . 8", IPV4, "8.8.8.8", "ipv4-spaces"),
    ("2606:4700:0000:0000::1111", IPV6, "2606:4700::1111", "ipv6-compressed"),
    ("[2606:4700::1111]", IPV6, "2606:4700::1111", "ipv6-brackets"),
    ("2606:4700::ABCD", IPV6, "2606:4700::abcd", "ipv6-lower"),
    ("::ffff:8.8.8.8", IPV6, "::ffff:8.8.8.8", "ipv6-mapped-public"),
    ("64:ff9b::808:808", IPV6, "64:ff9b::808:808", "nat64-of-public"),
    ("example[dot]com", DOMAIN, "example.com", "bracket-word-dot"),
    ("example(dot)com", DOMAIN, "example.com", "paren-word-dot"),
    ("example dot com", DOMAIN, "example.com", "spaced-word-dot"),
    ("example{.}com", DOMAIN, "example.com", "brace-dot"),
    ("evil-example[.]co[.]uk", DOMAIN, "evil-example.co.uk", "multi-label-suffix"),
    ("Evil-Example.COM", DOMAIN, "evil-example.com", "domain-upper"),
    ("evil-example.com.", DOMAIN, "evil-example.com", "domain-trailing-dot"),
    ("bücher.de", DOMAIN, "xn--bcher-kva.de", "idn"),
    ("xn--bcher-kva.de", DOMAIN, "xn--bcher-kva.de", "idn-punycode"),
    ("пример.рф", DOMAIN, "xn--e1afmkfd.xn--p1ai", "idn-tld"),
    ("evil-example。com", DOMAIN, "evil-example.com", "ideographic-full-stop"),
    ("evil-\u200bexample.com", DOMAIN, "evil-example.com", "zero-width-space"),
    (" evil-example.com\n", DOMAIN, "evil-example.com", "surrounding-whitespace"),
    ("a_b.evil-example.com", DOMAIN, "a_b.evil-example.com", "underscore-label"),
    ("user[@]evil-example[.]com", EMAIL, "user@evil-example.com", "email-bracket-at"),
    ("user[at]evil-example[.]com", EMAIL, "user@evil-example.com", "email-bracket-word-at"),
    ("user(at)evil-example(dot)com", EMAIL, "user@evil-example.com", "email-paren-words"),
    ("First.Last@Evil-Example.COM", EMAIL, "First.Last@evil-example.com", "email-case"),
    ("user@8.8.8.8", EMAIL, "user@[8.8.8.8]", "email-bare-ip"),
    ("user@[IPv6:2606:4700::1111]", EMAIL, "user@[IPv6:2606:4700::1111]", "email-ipv6-literal"),
    (MD5.upper(), IndicatorType.MD5, MD5, "md5-upper"),
    (SHA1.upper(), IndicatorType.SHA1, SHA1, "sha1-upper"),
    (f" {SHA256.upper()} ", IndicatorType.SHA256, SHA256, "sha256-upper-spaced"),
]


@pytest.mark.parametrize(
    ("given", "kind", "value"),
    [pytest.param(given, kind, value, id=case_id) for given, kind, value, case_id in READ_AS],
)
def test_defanged_and_plain_forms_read_to_their_canonical_value(
    given: str, kind: IndicatorType, value: str
) -> None:
    indicator = canonicalise(given)
    assert (indicator.type, indicator.value) == (kind, value)
    assert indicator.original == given


# (given, refusal code, id)
REFUSED = [
    ("127.0.0.1", RefusalCode.LOOPBACK_ADDRESS, "ipv4-loopback"),
    ("127[.]0[.]0[.]1", RefusalCode.LOOPBACK_ADDRESS, "defanged-loopback"),
    ("::1", RefusalCode.LOOPBACK_ADDRESS, "ipv6-loopback"),
    ("[::1]", RefusalCode.LOOPBACK_ADDRESS, "ipv6-loopback-brackets"),
    ("::ffff:127.0.0.1", RefusalCode.LOOPBACK_ADDRESS, "ipv4-mapped-loopback"),
    ("10.1.2.3", RefusalCode.PRIVATE_ADDRESS, "rfc1918-10"),
    ("172.16.5.4", RefusalCode.PRIVATE_ADDRESS, "rfc1918-172"),
    ("192.168.1.1", RefusalCode.PRIVATE_ADDRESS, "rfc1918-192"),
    ("fd00::1", RefusalCode.PRIVATE_ADDRESS, "ipv6-unique-local"),
    ("100.64.0.1", RefusalCode.PRIVATE_ADDRESS, "cgnat"),
    ("2002:c0a8:101::1", RefusalCode.PRIVATE_ADDRESS, "6to4-of-private"),
    ("169.254.169.254", RefusalCode.LINK_LOCAL_ADDRESS, "cloud-metadata"),
    ("fe80::1", RefusalCode.LINK_LOCAL_ADDRESS, "ipv6-link-local"),
    ("2606:4700::1111%eth0", RefusalCode.LINK_LOCAL_ADDRESS, "zone-index"),
    ("224.0.0.1", RefusalCode.MULTICAST_ADDRESS, "ipv4-multicast"),
    ("ff02::1", RefusalCode.MULTICAST_ADDRESS, "ipv6-multicast"),
    ("0.0.0.0", RefusalCode.UNSPECIFIED_ADDRESS, "ipv4-unspecified"),
    ("::", RefusalCode.UNSPECIFIED_ADDRESS, "ipv6-unspecified"),
    ("192.0.2.1", RefusalCode.DOCUMENTATION_ADDRESS, "test-net-1"),
    ("198.51.100.7", RefusalCode.DOCUMENTATION_ADDRESS, "test-net-2"),
    ("203.0.113.9", RefusalCode.DOCUMENTATION_ADDRESS, "test-net-3"),
    ("2001:db8::1", RefusalCode.DOCUMENTATION_ADDRESS, "ipv6-documentation"),
    ("240.0.0.1", RefusalCode.RESERVED_ADDRESS, "class-e"),
    ("198.18.0.1", RefusalCode.RESERVED_ADDRESS, "benchmarking"),
    ("192.0.0.1", RefusalCode.RESERVED_ADDRESS, "ietf-protocol-assignments"),
    ("3fff::1", RefusalCode.DOCUMENTATION_ADDRESS, "ipv6-documentation-3fff"),
    ("fec0::1", RefusalCode.PRIVATE_ADDRESS, "ipv6-site-local"),
    ("64:ff9b::a00:1", RefusalCode.PRIVATE_ADDRESS, "nat64-of-private"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", RefusalCode.PRIVATE_ADDRESS, "teredo-of-private"),
    ("hxxp://127.0.0[.]1/admin", RefusalCode.LOOPBACK_ADDRESS, "url-loopback"),
    ("http://[fe80::1]/", RefusalCode.LINK_LOCAL_ADDRESS, "url-ipv6-link-local"),
    ("http://169.254.169.254/latest/meta-data", RefusalCode.LINK_LOCAL_ADDRESS, "url-metadata"),
    ("user@[10.0.0.1]", RefusalCode.PRIVATE_ADDRESS, "email-private-literal"),
    ("localhost", RefusalCode.NOT_PUBLIC_DOMAIN, "localhost"),
    ("api.localhost", RefusalCode.NOT_PUBLIC_DOMAIN, "under-localhost"),
    ("printer.local", RefusalCode.NOT_PUBLIC_DOMAIN, "mdns-local"),
    ("db.corp.internal", RefusalCode.NOT_PUBLIC_DOMAIN, "internal"),
    ("router.home.arpa", RefusalCode.NOT_PUBLIC_DOMAIN, "home-arpa"),
    ("fileserver", RefusalCode.NOT_PUBLIC_DOMAIN, "single-label"),
    ("evil.notatld", RefusalCode.NOT_PUBLIC_DOMAIN, "unknown-suffix"),
    ("co.uk", RefusalCode.NOT_PUBLIC_DOMAIN, "bare-public-suffix"),
    ("http://localhost:8000/", RefusalCode.NOT_PUBLIC_DOMAIN, "url-localhost"),
    ("admin@printer.local", RefusalCode.NOT_PUBLIC_DOMAIN, "email-local-domain"),
    ("evil..example.com", RefusalCode.INVALID_DOMAIN, "empty-label"),
    ("-evil.example.com", RefusalCode.INVALID_DOMAIN, "leading-hyphen"),
    (f"{'a' * 64}.com", RefusalCode.INVALID_DOMAIN, "label-too-long"),
    ("1.2.3", RefusalCode.INVALID_DOMAIN, "short-ipv4"),
    ("010.1.1.1", RefusalCode.INVALID_DOMAIN, "leading-zero-octet"),
    ("xn--zz.com", RefusalCode.INVALID_DOMAIN, "bad-punycode"),
    ("javascript://evil-example.com", RefusalCode.UNSUPPORTED_SCHEME, "javascript-scheme"),
    ("file:///etc/passwd", RefusalCode.UNSUPPORTED_SCHEME, "file-scheme"),
    ("http://[::1", RefusalCode.INVALID_URL, "unclosed-bracket"),
    ("http://evil-example.com:99999/", RefusalCode.INVALID_URL, "port-out-of-range"),
    ("http://:8080/path", RefusalCode.INVALID_URL, "no-host"),
    ("https://evil-example.com:0/", RefusalCode.INVALID_URL, "port-zero"),
    ("us er()@evil-example.com", RefusalCode.INVALID_EMAIL, "bad-local-part"),
    ("", RefusalCode.EMPTY, "empty"),
    ("  \t\n ", RefusalCode.EMPTY, "whitespace-only"),
    ("[.]", RefusalCode.UNRECOGNISED, "dot-only"),
    ("!!!", RefusalCode.UNRECOGNISED, "punctuation"),
    ("<script>alert(1)</script>", RefusalCode.UNRECOGNISED, "markup"),
    ("evil\u202eexample.com", RefusalCode.UNRECOGNISED, "bidi-override"),
    ("evil\ue000example.com", RefusalCode.UNRECOGNISED, "private-use-character"),
    ("a" * (MAX_INPUT_LENGTH + 1), RefusalCode.TOO_LONG, "over-long"),
    ("[.]" * 1000, RefusalCode.TOO_LONG, "over-long-defanged"),
]


@pytest.mark.parametrize(
    ("given", "code"),
    [pytest.param(given, code, id=case_id) for given, code, case_id in REFUSED],
)
def test_what_must_not_be_looked_up_is_refused_with_its_code(given: str, code: RefusalCode) -> None:
    with pytest.raises(IndicatorRefused) as refused:
        canonicalise(given)
    assert refused.value.code == code
    assert refused.value.message
    assert str(code) in str(refused.value)


def test_input_at_the_length_bound_is_read() -> None:
    url = "https://evil-example.com/"
    given = url + "a" * (MAX_INPUT_LENGTH - len(url))
    assert canonicalise(given).value == given


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("evil-example.com", IndicatorType.URL, id="domain-not-url"),
        pytest.param("https://evil-example.com/", DOMAIN, id="url-not-domain"),
        pytest.param("8.8.8.8", IPV6, id="ipv4-not-ipv6"),
        pytest.param(MD5, IndicatorType.SHA256, id="md5-not-sha256"),
        pytest.param("127.0.0.1", DOMAIN, id="mismatch-before-address-check"),
    ],
)
def test_an_indicator_of_another_type_than_expected_is_refused(
    given: str, expected: IndicatorType
) -> None:
    with pytest.raises(IndicatorRefused) as refused:
        canonicalise(given, expected=expected)
    assert refused.value.code == RefusalCode.TYPE_MISMATCH
    assert expected.value in refused.value.message


def test_an_indicator_of_the_expected_type_is_read() -> None:
    indicator = canonicalise("8[.]8[.]8[.]8", expected=IPV4)
    assert indicator.value == "8.8.8.8"
