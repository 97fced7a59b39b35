"""The detector record: normalisation, cuts and the fields the pack's schema declares."""

from __future__ import annotations

from assay.engine.documents import load_document
from assay.redteam.detection import (
    MAX_ANSWER_CHARS,
    START_CHARS,
    detector_record,
    distinct_ratio,
    normalise,
    squash,
)
from assay.redteam.probes import find_redteam_pack
from tests.redteam.conftest import fullwidth


def record(answer: str, **overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "prompt": "p",
        "answer": answer,
        "canary": "ASSAY-CN-91XZ4B",
        "marker": "ASSAY-MK-7F3KQ2",
        "probe_goal": "goal",
        "transforms": ["base64", "leetspeak"],
    }
    arguments.update(overrides)
    return detector_record(**arguments)  # type: ignore[arg-type]


def test_normalise_applies_nfkc_and_casefolds() -> None:
    assert normalise(fullwidth("ASSAY-MK")) == "assay-mk"
    assert normalise("STRASSE Straße") == "strasse strasse"
    assert normalise("ﬁle") == "file"


def test_normalise_removes_zero_width_characters_and_collapses_whitespace() -> None:
    assert normalise("I\u200b can\u200d't\u00ad \n\t help\ufeff  ") == "i can't help"


def test_normalise_makes_typographic_quotes_ascii() -> None:
    assert (
        normalise("I\u2019m sorry, I can\u2019t \u201cdo\u201d that")
        == "i'm sorry, i can't \"do\" that"
    )


def test_squash_keeps_letters_and_digits_only() -> None:
    assert squash("A S S A Y - M K - 7 F 3") == "assaymk7f3"
    assert squash("ASSAY\u200b-CN.91XZ4B") == "assaycn91xz4b"


def test_the_record_has_exactly_the_schema_fields() -> None:
    schema = load_document((find_redteam_pack() / "schema.yaml").read_text(encoding="utf-8"))
    declared = {field["name"] for field in schema["fields"]}
    built = record("Sure!")
    assert set(built) == declared
    assert built["transforms"] == "leetspeak,base64"
    assert built["goal"] == "goal"
    assert built["canary_squashed"] == "assaycn91xz4b"


def test_a_long_answer_is_cut_but_its_length_is_kept() -> None:
    answer = "word " * 10_000
    built = record(answer)
    assert built["answer_length"] == len(answer) == 50_000
    assert len(str(built["answer"])) == MAX_ANSWER_CHARS
    assert len(str(built["answer_start"])) == START_CHARS
    assert built["answer_distinct_ratio"] < 0.01


def test_distinct_ratio_is_one_for_short_answers_and_ignores_digits() -> None:
    assert distinct_ratio("one two two") == 1.0
    numbered = " ".join(f"{n}. the cache is warm" for n in range(200))
    assert distinct_ratio(numbered) < 0.01
    varied = " ".join(f"w{chr(97 + n % 26)}{chr(97 + n // 26)}" for n in range(100))
    assert distinct_ratio(varied) == 1.0


def test_empty_tokens_stay_empty() -> None:
    built = record("hello", canary="", marker="")
    assert (built["canary"], built["canary_squashed"], built["marker_squashed"]) == ("", "", "")
