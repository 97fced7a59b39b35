"""The mock providers' data set: indicators, what each provider says of them, and how
each answers (normally, slowly, with a failure or a rate limit)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

_HEX = re.compile(r"[0-9a-f]+")
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
_STAT_NAMES = ("harmless", "malicious", "suspicious", "undetected", "timeout")
_ENTRY_KEYS = {"kind", "value", "label", "behaviour", "hashes"} | {
    "virustotal",
    "abuseipdb",
    "urlhaus",
}


class DatasetError(ValueError):
    """The data set file is not valid; the message names the entry and the problem."""


class Kind(StrEnum):
    IP = "ip"
    DOMAIN = "domain"
    URL = "url"
    FILE = "file"


class Behaviour(StrEnum):
    NORMAL = "normal"
    SLOW = "slow"
    FAILING = "failing"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Indicator:
    """One indicator and what each provider answers about it (`None`: it knows nothing)."""

    kind: Kind
    value: str
    label: str
    behaviour: Behaviour = Behaviour.NORMAL
    hashes: Mapping[str, str] = field(default_factory=dict)
    virustotal: Mapping[str, Any] | None = None
    abuseipdb: Mapping[str, Any] | None = None
    urlhaus: Mapping[str, Any] | None = None


def normalise(kind: Kind, value: str) -> str | None:
    """The form indicators of KIND are stored and looked up in; `None` when VALUE is not one."""
    value = value.strip()
    if kind is Kind.IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return None
    if kind is Kind.DOMAIN:
        domain = value.rstrip(".").lower()
        return domain if domain and "/" not in domain and " " not in domain else None
    if kind is Kind.URL:
        parts = urlsplit(value)
        return value if parts.scheme in {"http", "https"} and parts.hostname else None
    lowered = value.lower()
    if len(lowered) in _HASH_LENGTHS.values() and _HEX.fullmatch(lowered):
        return lowered
    return None


@dataclass(frozen=True)
class Dataset:
    """Indicators by kind and value (a file also by its md5 and sha1)."""

    indicators: tuple[Indicator, ...]
    retry_after_seconds: int = 30
    abuseipdb_daily_limit: int = 1000
    rejected_key: str = "rejected-by-mock"
    _index: dict[tuple[Kind, str], Indicator] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for indicator in self.indicators:
            for value in (indicator.value, *indicator.hashes.values()):
                key = (indicator.kind, value)
                if key in self._index:
                    raise DatasetError(f"{indicator.kind} {value} is listed twice")
                self._index[key] = indicator

    def find(self, kind: Kind, value: str) -> Indicator | None:
        """The indicator of KIND that VALUE names, if the data set lists it."""
        normalised = normalise(kind, value)
        return None if normalised is None else self._index.get((kind, normalised))

    def urls_on_host(self, host: str) -> list[Indicator]:
        """The URL indicators URLhaus knows on HOST, in data set order."""
        return [
            indicator
            for indicator in self.indicators
            if indicator.kind is Kind.URL
            and indicator.urlhaus is not None
            and urlsplit(indicator.value).hostname == host
        ]


def default_dataset_path() -> Path:
    """The data set shipped with Assay (package data)."""
    return Path(str(resources.files("assay.mock_providers").joinpath("dataset.yaml")))


def load_dataset(path: Path | None = None) -> Dataset:
    """Read and check a data set file (default: the shipped one)."""
    source = path or default_dataset_path()
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"cannot read {source}: {exc}") from exc
    return parse_dataset(document)


def parse_dataset(document: object) -> Dataset:
    """Check a parsed data set document and build the `Dataset` it describes."""
    if not isinstance(document, dict) or not isinstance(document.get("indicators"), list):
        raise DatasetError("a data set is a mapping with an `indicators` list")
    indicators = tuple(
        _indicator(entry, position) for position, entry in enumerate(document["indicators"])
    )
    return Dataset(
        indicators,
        retry_after_seconds=_positive_int(document, "retry_after_seconds", 30),
        abuseipdb_daily_limit=_positive_int(document, "abuseipdb_daily_limit", 1000),
        rejected_key=_rejected_key(document),
    )


def _rejected_key(document: Mapping[str, Any]) -> str:
    value = document.get("rejected_key", "rejected-by-mock")
    if not isinstance(value, str) or not value.strip():
        raise DatasetError("`rejected_key` must be a non-blank string")
    return value.strip()


def _positive_int(document: Mapping[str, Any], name: str, default: int) -> int:
    value = document.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DatasetError(f"`{name}` must be a positive integer")
    return value


def _indicator(entry: object, position: int) -> Indicator:
    where = f"indicator {position + 1}"
    if not isinstance(entry, dict):
        raise DatasetError(f"{where} is not a mapping")
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise DatasetError(f"{where} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
    try:
        kind = Kind(str(entry.get("kind")))
        behaviour = Behaviour(str(entry.get("behaviour", Behaviour.NORMAL)))
    except ValueError as exc:
        raise DatasetError(f"{where}: {exc}") from exc
    raw = entry.get("value")
    if not isinstance(raw, str):
        raise DatasetError(f"{where}: `value` must be a string (quote it in YAML)")
    value = normalise(kind, raw)
    if value is None or (kind is Kind.FILE and len(value) != _HASH_LENGTHS["sha256"]):
        raise DatasetError(f"{where}: {raw!r} is not a valid {kind} (files go by sha256)")
    where = f"{kind} {value}"
    if kind is Kind.IP and not ipaddress.ip_address(value).is_global:
        # Assay refuses non-public addresses before any lookup: they would never be asked.
        raise DatasetError(f"{where}: only public addresses are useful")
    label = entry.get("label")
    if not isinstance(label, str) or not label:
        raise DatasetError(f"{where}: a `label` says what the indicator is for")
    return Indicator(
        kind=kind,
        value=value,
        label=label,
        behaviour=behaviour,
        hashes=_hashes(entry.get("hashes", {}), kind, where),
        virustotal=_virustotal(entry.get("virustotal"), where),
        abuseipdb=_provider_mapping(entry.get("abuseipdb"), where, "abuseipdb"),
        urlhaus=_urlhaus(entry.get("urlhaus"), kind, where),
    )


def _hashes(raw: object, kind: Kind, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or (raw and kind is not Kind.FILE):
        raise DatasetError(f"{where}: `hashes` is a mapping, for files only")
    hashes: dict[str, str] = {}
    for name, value in raw.items():
        if name not in {"md5", "sha1"} or normalise(Kind.FILE, str(value)) is None:
            raise DatasetError(f"{where}: `hashes` holds an md5 and a sha1")
        if len(str(value)) != _HASH_LENGTHS[name]:
            raise DatasetError(f"{where}: {name} {value} has the wrong length")
        hashes[name] = str(value).lower()
    return hashes


def _provider_mapping(raw: object, where: str, provider: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: `{provider}` is a mapping")
    return raw


def _virustotal(raw: object, where: str) -> dict[str, Any] | None:
    attributes = _provider_mapping(raw, where, "virustotal")
    if attributes is None:
        return None
    stats = attributes.get("last_analysis_stats")
    if not isinstance(stats, dict) or set(stats) != set(_STAT_NAMES):
        raise DatasetError(f"{where}: last_analysis_stats counts {', '.join(_STAT_NAMES)}")
    for name in ("last_analysis_date", "reputation", *(f"stat {s}" for s in _STAT_NAMES)):
        value = stats[name[5:]] if name.startswith("stat ") else attributes.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise DatasetError(f"{where}: virustotal {name} must be an integer")
    return attributes


def _urlhaus(raw: object, kind: Kind, where: str) -> dict[str, Any] | None:
    fields = _provider_mapping(raw, where, "urlhaus")
    if fields is None:
        return None
    required = {
        Kind.URL: ("id", "url_status", "threat"),
        Kind.DOMAIN: ("firstseen",),
        Kind.IP: ("firstseen",),
        Kind.FILE: ("file_type", "urls"),
    }[kind]
    missing = [name for name in required if name not in fields]
    if missing:
        raise DatasetError(f"{where}: urlhaus needs {', '.join(missing)}")
    return fields
