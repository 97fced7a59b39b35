"""The taxonomies probes are tagged with: OWASP Top 10 for LLM Applications and MITRE ATLAS.

A tag is stored as (framework, version, id), never as a bare id, because the OWASP list
was renumbered between its 2023 and 2025 editions: ``LLM06`` is Sensitive Information
Disclosure in 2023 and Excessive Agency in 2025. Probes are tagged with the 2025
numbering; `owasp_2023` gives the 2023 entry for those who still report against it.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Framework = Literal["owasp-llm", "mitre-atlas"]

OWASP_LLM_2025: Final[dict[str, str]] = {
    "LLM01": "Prompt Injection",
    "LLM02": "Sensitive Information Disclosure",
    "LLM03": "Supply Chain",
    "LLM04": "Data and Model Poisoning",
    "LLM05": "Improper Output Handling",
    "LLM06": "Excessive Agency",
    "LLM07": "System Prompt Leakage",
    "LLM08": "Vector and Embedding Weaknesses",
    "LLM09": "Misinformation",
    "LLM10": "Unbounded Consumption",
}

OWASP_LLM_2023: Final[dict[str, str]] = {
    "LLM01": "Prompt Injection",
    "LLM02": "Insecure Output Handling",
    "LLM03": "Training Data Poisoning",
    "LLM04": "Model Denial of Service",
    "LLM05": "Supply Chain Vulnerabilities",
    "LLM06": "Sensitive Information Disclosure",
    "LLM07": "Insecure Plugin Design",
    "LLM08": "Excessive Agency",
    "LLM09": "Overreliance",
    "LLM10": "Model Theft",
}

# The 2023 entry that covered each 2025 one. System Prompt Leakage and Vector and
# Embedding Weaknesses are new in 2025 and had no entry of their own, so they map to
# None rather than to a guess; a report against 2023 lists them apart.
OWASP_2025_TO_2023: Final[dict[str, str | None]] = {
    "LLM01": "LLM01",
    "LLM02": "LLM06",
    "LLM03": "LLM05",
    "LLM04": "LLM03",
    "LLM05": "LLM02",
    "LLM06": "LLM08",
    "LLM07": None,
    "LLM08": None,
    "LLM09": "LLM09",
    "LLM10": "LLM04",
}

# The ATLAS techniques the shipped probe sets use. Other well-formed technique ids are
# accepted in custom probe sets; they are shown by id, without a name.
ATLAS_TECHNIQUES: Final[dict[str, str]] = {
    "AML.T0029": "Denial of ML Service",
    "AML.T0034": "Cost Harvesting",
    "AML.T0051": "LLM Prompt Injection",
    "AML.T0051.000": "LLM Prompt Injection: Direct",
    "AML.T0051.001": "LLM Prompt Injection: Indirect",
    "AML.T0053": "LLM Plugin Compromise",
    "AML.T0054": "LLM Jailbreak",
    "AML.T0056": "LLM Meta Prompt Extraction",
    "AML.T0057": "LLM Data Leakage",
}

OWASP_VERSIONS: Final[dict[str, dict[str, str]]] = {"2025": OWASP_LLM_2025, "2023": OWASP_LLM_2023}
_ATLAS_ID = re.compile(r"AML\.T\d{4}(?:\.\d{3})?")


class TaxonomyRef(BaseModel):
    """One taxonomy entry a probe is tagged with, checked against the known entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    framework: Framework
    version: str = Field(min_length=1, max_length=16)
    id: str = Field(min_length=1, max_length=32)

    @field_validator("version", mode="before")
    @classmethod
    def _year_as_text(cls, version: object) -> object:
        # YAML reads an unquoted 2025 as a number; the edition is text ("2025").
        return (
            str(version) if isinstance(version, int) and not isinstance(version, bool) else version
        )

    @model_validator(mode="after")
    def _known(self) -> TaxonomyRef:
        if self.framework == "owasp-llm":
            entries = OWASP_VERSIONS.get(self.version)
            if entries is None:
                known = ", ".join(sorted(OWASP_VERSIONS))
                raise ValueError(
                    f"OWASP LLM version {self.version!r} is not known (known: {known})"
                )
            if self.id not in entries:
                raise ValueError(
                    f"{self.id!r} is not an OWASP LLM {self.version} entry (LLM01 to LLM10)"
                )
        elif _ATLAS_ID.fullmatch(self.id) is None:
            raise ValueError(
                f"{self.id!r} is not a MITRE ATLAS technique id (AML.T0051 or AML.T0051.000)"
            )
        return self

    @property
    def name(self) -> str:
        """The entry's name (`Prompt Injection`); an ATLAS id not listed here gives its id."""
        if self.framework == "owasp-llm":
            return OWASP_VERSIONS[self.version][self.id]
        return ATLAS_TECHNIQUES.get(self.id, self.id)

    @property
    def label(self) -> str:
        """How reports name the entry: ``LLM01:2025`` for OWASP, the id for ATLAS."""
        if self.framework == "owasp-llm":
            return f"{self.id}:{self.version}"
        return self.id


def owasp_2023(entry: TaxonomyRef) -> str | None:
    """The 2023 OWASP label (``LLM06:2023``) of an OWASP entry; None for ATLAS entries and
    for 2025 entries that were new in 2025."""
    if entry.framework != "owasp-llm":
        return None
    if entry.version == "2023":
        return entry.label
    old = OWASP_2025_TO_2023.get(entry.id)
    return None if old is None else f"{old}:2023"
