"""Calibration: how often each detector is wrong on a labelled corpus of answers.

The corpus (``examples/redteam/calibration/corpus.yaml``, format
``assay-redteam-corpus/v1``) holds answers labelled `refusal` or `compliance`, and for
each the detectors that should fire on it (`detects`). Every detector model of the pack
is built in process with the engine (no database, no registry) and scores every answer:

- for `redteam-refusal`, the positives are the refusals;
- for any other detector, the positives are the entries that list it in `detects`.

A false positive is a negative scored >= 0.5, a false negative a positive scored below.
`assay redteam calibrate` prints the rates; a test holds the refusal detector's under 2 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assay.engine.documents import DocumentRefused, load_document
from assay.engine.pack import build_pack_scorers, load_pack
from assay.engine.results import PredictionResult
from assay.engine.spec import MODEL_NAME_PATTERN
from assay.redteam.detection import (
    HIT_THRESHOLD,
    MAX_ANSWER_CHARS,
    REFUSAL_DETECTOR,
    detector_record,
)
from assay.redteam.probes import find_redteam_pack

CORPUS_FORMAT: Final = "assay-redteam-corpus/v1"
CORPUS_PATH: Final = Path("calibration") / "corpus.yaml"
MAX_CORPUS_BYTES: Final = 1 << 20
_EXCERPT_CHARS: Final = 120


class CalibrationError(ValueError):
    """The corpus or the pack cannot be used; the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CorpusEntry(_Strict):
    """One labelled answer."""

    label: Literal["refusal", "compliance"]
    answer: str = Field(min_length=1, max_length=MAX_ANSWER_CHARS)
    prompt: str = Field("", max_length=4000)
    # Detectors (other than the refusal one, which follows `label`) that should fire.
    detects: list[Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]] = Field(
        default_factory=list, max_length=10
    )
    # The answer repeated this many times, space-joined: runaway output without pasting
    # 10,000 characters into the corpus.
    repeat: int = Field(1, ge=1, le=10_000)

    @property
    def text(self) -> str:
        return " ".join([self.answer] * self.repeat) if self.repeat > 1 else self.answer


class Corpus(_Strict):
    """The labelled answers, and the per-scan tokens they are scored with."""

    format: Literal["assay-redteam-corpus/v1"]
    canary: str = Field(pattern=r"^ASSAY-CN-[A-Z0-9]+$")
    marker: str = Field(pattern=r"^ASSAY-MK-[A-Z0-9]+$")
    entries: list[CorpusEntry] = Field(min_length=1, max_length=5000)


@dataclass(frozen=True, slots=True)
class Miss:
    """An entry a detector got wrong."""

    index: int
    expected: bool
    score: float | None
    excerpt: str


@dataclass(frozen=True, slots=True)
class DetectorCalibration:
    """One detector's errors on the corpus; a rate is None when there is nothing to err on."""

    detector: str
    positives: int
    negatives: int
    false_positives: int
    false_negatives: int
    errors: int
    misses: tuple[Miss, ...] = field(default=())

    @property
    def false_positive_rate(self) -> float | None:
        return self.false_positives / self.negatives if self.negatives else None

    @property
    def false_negative_rate(self) -> float | None:
        return self.false_negatives / self.positives if self.positives else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "positives": self.positives,
            "negatives": self.negatives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "false_positive_rate": self.false_positive_rate,
            "false_negative_rate": self.false_negative_rate,
            "errors": self.errors,
            "misses": [
                {"index": m.index, "expected": m.expected, "score": m.score, "excerpt": m.excerpt}
                for m in self.misses
            ],
        }


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """Every detector's calibration on one corpus."""

    pack: Path
    corpus: Path
    entries: int
    detectors: tuple[DetectorCalibration, ...]

    def detector(self, name: str) -> DetectorCalibration:
        for result in self.detectors:
            if result.detector == name:
                return result
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pack": str(self.pack),
            "corpus": str(self.corpus),
            "entries": self.entries,
            "detectors": [d.as_dict() for d in self.detectors],
        }


def load_corpus(path: Path) -> Corpus:
    """Read and check a calibration corpus; `CalibrationError` says what is wrong."""
    try:
        if path.stat().st_size > MAX_CORPUS_BYTES:
            raise CalibrationError(f"{path}: larger than {MAX_CORPUS_BYTES} bytes")
        document = load_document(path.read_text(encoding="utf-8"))
        return Corpus.model_validate(document)
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: cannot be read: {str(exc).splitlines()[0]}") from None
    except DocumentRefused as exc:
        raise CalibrationError(f"{path}: cannot be read: {exc}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CalibrationError(
            f"{path} is not a valid {CORPUS_FORMAT} file ({exc.error_count()} problem(s)); "
            f"first: {where}: {first['msg']}"
        ) from None


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT_CHARS else flat[: _EXCERPT_CHARS - 1] + "…"


def _calibrate_one(
    name: str, scores: Sequence[float | None], corpus: Corpus
) -> DetectorCalibration:
    positives = negatives = false_positives = false_negatives = errors = 0
    misses: list[Miss] = []
    for index, (entry, score) in enumerate(zip(corpus.entries, scores, strict=True)):
        expected = entry.label == "refusal" if name == REFUSAL_DETECTOR else name in entry.detects
        if expected:
            positives += 1
        else:
            negatives += 1
        if score is None:
            errors += 1
            misses.append(Miss(index, expected, None, _excerpt(entry.answer)))
            continue
        if (score >= HIT_THRESHOLD) != expected:
            if expected:
                false_negatives += 1
            else:
                false_positives += 1
            misses.append(Miss(index, expected, score, _excerpt(entry.answer)))
    return DetectorCalibration(
        name, positives, negatives, false_positives, false_negatives, errors, tuple(misses)
    )


def calibrate(pack_dir: Path | None = None, corpus_path: Path | None = None) -> CalibrationReport:
    """Score the corpus with every detector of the pack (the shipped one by default) and
    count each detector's false positives and false negatives."""
    pack_path = Path(pack_dir) if pack_dir is not None else find_redteam_pack()
    corpus_file = Path(corpus_path) if corpus_path is not None else pack_path / CORPUS_PATH
    corpus = load_corpus(corpus_file)
    pack = load_pack(pack_path)
    scorers = build_pack_scorers(pack)
    unknown = sorted({d for e in corpus.entries for d in e.detects} - set(scorers))
    if unknown:
        raise CalibrationError(
            f"{corpus_file}: `detects` names detector(s) not in the pack: {', '.join(unknown)}"
        )
    records = [
        detector_record(
            prompt=entry.prompt,
            answer=entry.text,
            canary=corpus.canary,
            marker=corpus.marker,
            probe_goal="calibration",
            transforms=(),
        )
        for entry in corpus.entries
    ]
    results = []
    for name, scorer in scorers.items():
        scored = scorer.score_batch(records, explain=False)
        scores = [r.score if isinstance(r, PredictionResult) else None for r in scored]
        results.append(_calibrate_one(name, scores, corpus))
    return CalibrationReport(pack.directory, corpus_file, len(corpus.entries), tuple(results))
