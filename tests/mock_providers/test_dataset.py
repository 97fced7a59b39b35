"""The shipped data set: valid, public, and covering every behaviour the docs promise."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from assay.mock_providers.dataset import (
    Behaviour,
    DatasetError,
    Kind,
    default_dataset_path,
    load_dataset,
    parse_dataset,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "mock-providers.md"


def test_the_shipped_data_set_has_every_behaviour_for_ips_domains_and_urls() -> None:
    dataset = load_dataset()
    for kind in (Kind.IP, Kind.DOMAIN, Kind.URL):
        behaviours = {i.behaviour for i in dataset.indicators if i.kind is kind}
        assert behaviours == set(Behaviour), kind
    assert dataset.retry_after_seconds == 30


def test_every_address_in_the_shipped_data_set_is_public() -> None:
    # Assay refuses private, loopback and documentation ranges before any lookup.
    for indicator in load_dataset().indicators:
        if indicator.kind is Kind.IP:
            assert ipaddress.ip_address(indicator.value).is_global, indicator.value


def test_the_docs_list_every_indicator_of_the_shipped_data_set() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [i.value for i in load_dataset().indicators if f"`{i.value}`" not in text]
    assert not missing, f"docs/mock-providers.md does not list {missing}"


def test_the_data_set_is_package_data() -> None:
    assert default_dataset_path().is_file()
    assert default_dataset_path().parent.name == "mock_providers"


def _document(**entry: Any) -> dict[str, Any]:
    return {"indicators": [{"kind": "ip", "value": "1.1.1.1", "label": "good", **entry}]}


STATS = {"harmless": 1, "malicious": 0, "suspicious": 0, "undetected": 0, "timeout": 0}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "mapping with an `indicators` list"),
        (_document(kind="email"), "'email' is not a valid Kind"),
        (_document(behaviour="sometimes"), "'sometimes' is not a valid Behaviour"),
        (_document(value="10.0.0.1"), "only public addresses"),
        (_document(value="203.0.113.9"), "only public addresses"),
        (_document(value=42), "must be a string"),
        (_document(label=""), "`label`"),
        (_document(colour="red"), "unknown keys: colour"),
        (_document(virustotal={"reputation": 0}), "last_analysis_stats"),
        (
            _document(virustotal={"last_analysis_stats": STATS, "reputation": "high"}),
            "last_analysis_date must be an integer",
        ),
        (_document(hashes={"md5": "0" * 32}), "for files only"),
        (_document(kind="file", value="0" * 32), "files go by sha256"),
        (_document(kind="url", value="https://x.example/", urlhaus={}), "urlhaus needs id"),
        ({"indicators": [], "retry_after_seconds": 0}, "retry_after_seconds"),
        ({"indicators": [], "rejected_key": " "}, "rejected_key"),
    ],
    ids=[
        "not-a-mapping",
        "unknown-kind",
        "unknown-behaviour",
        "private-address",
        "documentation-address",
        "unquoted-value",
        "no-label",
        "unknown-key",
        "no-stats",
        "no-date",
        "hashes-on-an-ip",
        "file-by-md5",
        "urlhaus-url-without-id",
        "retry-after-zero",
        "blank-rejected-key",
    ],
)
def test_an_invalid_data_set_is_refused_with_its_problem(document: object, problem: str) -> None:
    with pytest.raises(DatasetError, match=problem.replace("(", r"\(").replace("`", "`")):
        parse_dataset(document)


def test_an_indicator_listed_twice_is_refused() -> None:
    entry = {"kind": "domain", "value": "example.com", "label": "x"}
    with pytest.raises(DatasetError, match="listed twice"):
        parse_dataset({"indicators": [entry, {**entry, "value": "EXAMPLE.com."}]})


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("indicators: [unclosed", encoding="utf-8")
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(broken)
