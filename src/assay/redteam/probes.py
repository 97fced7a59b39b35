"""Probe sets: versioned YAML files of attack prompts (format ``assay-probes/v1``).

A probe set groups probes with one goal family. Each probe has a prompt that may use
the per-scan placeholders ``{marker}`` and ``{canary}``, the taxonomy entries it
exercises, the detector models that decide whether it worked, and a severity. Files
are read through the engine's bounded document loader (no YAML aliases; size, node
count and depth capped) and checked strictly: an unknown key, taxonomy entry or
placeholder is an error naming where it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assay.engine.documents import DocumentRefused, load_document
from assay.engine.spec import MODEL_NAME_PATTERN
from assay.redteam.taxonomy import TaxonomyRef
from assay.redteam.transforms import PLACEHOLDERS

PROBES_FORMAT: Final = "assay-probes/v1"
MAX_PROBE_FILE_BYTES: Final = 1 << 20
MAX_PROMPT_TEMPLATE_CHARS: Final = 8000
PROBE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
# Anything that looks like a placeholder: a lone word in braces. JSON and code in a
# prompt (`{"a": 1}`, `{ x }`) do not match and stay text.
_PLACEHOLDER_LIKE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PACK_PARTS: Final = ("examples", "redteam")
_PACKAGE_DIR: Final = Path(__file__).resolve().parent.parent

Severity = Literal["critical", "high", "medium", "low"]


class ProbeSetError(ValueError):
    """A probe set cannot be used; the message names the file and every problem."""


class _Strict(BaseModel):
    # strict: a YAML "2" is not the version 2, nor "yes" a boolean.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Probe(_Strict):
    """One attack prompt and how to judge the answer."""

    id: str = Field(pattern=PROBE_ID_PATTERN)
    goal: str = Field(min_length=1, max_length=500)
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_TEMPLATE_CHARS)
    taxonomy: list[TaxonomyRef] = Field(min_length=1, max_length=10)
    detectors: list[Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]] = Field(
        min_length=1, max_length=10
    )
    severity: Severity
    # Leakage probes need the scan to plant the canary in a system prompt.
    system_prompt_needed: bool = False

    @field_validator("prompt")
    @classmethod
    def _known_placeholders(cls, prompt: str) -> str:
        unknown = sorted({m for m in _PLACEHOLDER_LIKE.findall(prompt) if m not in PLACEHOLDERS})
        if unknown:
            named = ", ".join("{" + name + "}" for name in unknown)
            known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder(s) {named}; known: {known}")
        return prompt

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The placeholders the prompt uses, by name (``marker``, ``canary``)."""
        return tuple(name for name in PLACEHOLDERS if "{" + name + "}" in self.prompt)


class ProbeSet(_Strict):
    """A named, versioned group of probes."""

    format: Literal["assay-probes/v1"]
    name: str = Field(pattern=MODEL_NAME_PATTERN)
    version: int = Field(ge=1, le=1_000_000)
    description: str = Field(min_length=1, max_length=2000)
    probes: list[Probe] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _unique_ids(self) -> ProbeSet:
        seen: set[str] = set()
        for probe in self.probes:
            if probe.id in seen:
                raise ValueError(f"two probes share the id {probe.id!r}")
            seen.add(probe.id)
        return self

    @property
    def detectors(self) -> frozenset[str]:
        """Every detector model a probe of the set names."""
        return frozenset(name for probe in self.probes for name in probe.detectors)

    def probe(self, probe_id: str) -> Probe:
        for probe in self.probes:
            if probe.id == probe_id:
                return probe
        raise KeyError(probe_id)


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(document)"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_probe_set(text: str, *, source: str = "probe set") -> ProbeSet:
    """Read a probe-set document from `text`; `ProbeSetError` names every problem."""
    try:
        document = load_document(text)
    except DocumentRefused as exc:
        raise ProbeSetError(f"{source}: cannot be read: {exc}") from None
    try:
        return ProbeSet.model_validate(document)
    except ValidationError as exc:
        raise ProbeSetError(
            f"{source} is not a valid {PROBES_FORMAT} file:\n{_describe(exc)}"
        ) from None


def load_probe_set(path: Path) -> ProbeSet:
    """Read and check one probe-set file; `ProbeSetError` names the file and each problem."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_PROBE_FILE_BYTES:
            raise ProbeSetError(f"{file}: larger than {MAX_PROBE_FILE_BYTES} bytes")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeSetError(f"{file}: cannot be read: {str(exc).splitlines()[0][:200]}") from None
    return parse_probe_set(text, source=str(file))


def find_redteam_pack() -> Path:
    """The red-team pack of the source checkout Assay runs from, else the one installed
    with Assay (package data in the wheel), else ``examples/redteam`` under the current
    directory."""
    checkout = _PACKAGE_DIR.parents[1].joinpath(*_PACK_PARTS)
    installed = _PACKAGE_DIR.joinpath(*_PACK_PARTS)
    for candidate in (checkout, installed):
        if (candidate / "manifest.yaml").is_file():
            return candidate
    return Path.cwd().joinpath(*_PACK_PARTS)


def load_probe_sets(directory: Path) -> Mapping[str, ProbeSet]:
    """Every ``*.yaml`` probe set in `directory`, by set name (sorted); two files naming
    the same set are an error."""
    sets: dict[str, ProbeSet] = {}
    for file in sorted(Path(directory).glob("*.yaml")):
        probe_set = load_probe_set(file)
        if probe_set.name in sets:
            raise ProbeSetError(f"{file}: another file already defines {probe_set.name!r}")
        sets[probe_set.name] = probe_set
    return MappingProxyType(dict(sorted(sets.items())))


@cache
def builtin_probe_sets() -> Mapping[str, ProbeSet]:
    """The probe sets shipped with Assay (``examples/redteam/probes``), by name; read once
    per process (the files are package data, and the sets are immutable)."""
    return load_probe_sets(find_redteam_pack() / "probes")
