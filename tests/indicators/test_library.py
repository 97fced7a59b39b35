"""indicators is a library: no web or database library, and no network access at all."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest

from assay.indicators import domains

IMPORT_THE_INDICATORS = """
import sys
from assay.indicators.service import canonicalise
print(canonicalise("bücher.de").value)
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""
WEB_DATABASE = {"fastapi", "starlette", "sqlalchemy", "httpx", "redis", "asyncpg", "aiosqlite"}


def test_importing_the_indicators_imports_no_web_or_database_library_nor_the_app() -> None:
    # A fresh interpreter: this test process may have imported the whole application.
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_INDICATORS],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    value, modules = result.stdout.splitlines()
    assert value == "xn--bcher-kva.de"
    imported = set(modules.split())
    assert imported & WEB_DATABASE == set()


def test_the_public_suffix_list_is_read_from_the_snapshot_without_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the public suffix list was fetched")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "https://publicsuffix.org/list/")
    extractor = domains._suffix_extractor()  # a fresh one: the module's is already loaded
    parts = extractor("www.evil-example.co.uk")
    assert (parts.domain, parts.suffix) == ("evil-example", "co.uk")
    assert extractor.suffix_list_urls == ()
