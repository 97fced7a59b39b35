"""The OWASP LLM 2025 entries, their 2023 numbering, and the ATLAS techniques probes use."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from assay.redteam.taxonomy import (
    ATLAS_TECHNIQUES,
    OWASP_LLM_2023,
    OWASP_LLM_2025,
    TaxonomyRef,
    owasp_2023,
)


def owasp(entry_id: str, version: str = "2025") -> TaxonomyRef:
    return TaxonomyRef(framework="owasp-llm", version=version, id=entry_id)


def test_the_2025_list_has_all_ten_entries_with_their_2025_names() -> None:
    assert list(OWASP_LLM_2025) == [f"LLM{n:02d}" for n in range(1, 11)]
    assert OWASP_LLM_2025["LLM01"] == "Prompt Injection"
    assert OWASP_LLM_2025["LLM02"] == "Sensitive Information Disclosure"
    assert OWASP_LLM_2025["LLM05"] == "Improper Output Handling"
    assert OWASP_LLM_2025["LLM06"] == "Excessive Agency"
    assert OWASP_LLM_2025["LLM07"] == "System Prompt Leakage"
    assert OWASP_LLM_2025["LLM10"] == "Unbounded Consumption"


def test_a_tag_is_labelled_with_its_edition() -> None:
    ref = owasp("LLM07")
    assert (ref.label, ref.name) == ("LLM07:2025", "System Prompt Leakage")
    assert owasp("LLM06", "2023").name == "Sensitive Information Disclosure"


@pytest.mark.parametrize(
    ("entry_2025", "label_2023"),
    [
        ("LLM01", "LLM01:2023"),
        ("LLM02", "LLM06:2023"),
        ("LLM05", "LLM02:2023"),
        ("LLM06", "LLM08:2023"),
        ("LLM07", None),
        ("LLM10", "LLM04:2023"),
    ],
)
def test_2025_entries_map_to_the_2023_numbering(entry_2025: str, label_2023: str | None) -> None:
    assert owasp_2023(owasp(entry_2025)) == label_2023


def test_every_2025_entry_maps_to_a_2023_entry_or_to_none() -> None:
    for entry_id in OWASP_LLM_2025:
        mapped = owasp_2023(owasp(entry_id))
        assert mapped is None or mapped.removesuffix(":2023") in OWASP_LLM_2023


def test_atlas_tags_are_named_and_have_no_owasp_mapping() -> None:
    ref = TaxonomyRef(framework="mitre-atlas", version="2025", id="AML.T0051")
    assert (ref.label, ref.name) == ("AML.T0051", "LLM Prompt Injection")
    assert owasp_2023(ref) is None
    assert ATLAS_TECHNIQUES["AML.T0054"] == "LLM Jailbreak"
    assert ATLAS_TECHNIQUES["AML.T0056"] == "LLM Meta Prompt Extraction"
    assert ATLAS_TECHNIQUES["AML.T0057"] == "LLM Data Leakage"
    # A well-formed technique not listed here is accepted and shown by its id.
    assert TaxonomyRef(framework="mitre-atlas", version="2025", id="AML.T0040").name == "AML.T0040"


@pytest.mark.parametrize(
    ("framework", "version", "entry_id", "message"),
    [
        ("owasp-llm", "2025", "LLM11", "not an OWASP LLM 2025 entry"),
        ("owasp-llm", "2024", "LLM01", "version '2024' is not known"),
        ("mitre-atlas", "2025", "T0051", "not a MITRE ATLAS technique id"),
        ("cwe", "4.14", "CWE-79", "owasp-llm"),
    ],
)
def test_unknown_taxonomy_entries_are_refused(
    framework: str, version: str, entry_id: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        TaxonomyRef.model_validate({"framework": framework, "version": version, "id": entry_id})
