"""CSV exports cannot carry formulas into a spreadsheet (formula injection)."""

from __future__ import annotations

import csv
import io

import pytest

from assay.core.csv_safe import SafeCsvWriter, csv_text, neutralise_cell


@pytest.mark.parametrize(
    "payload",
    [
        '=HYPERLINK("https://evil.example","click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "=",
        "-",
    ],
)
def test_cells_a_spreadsheet_would_evaluate_become_text(payload: str) -> None:
    assert neutralise_cell(payload) == "'" + payload


@pytest.mark.parametrize(
    "value", ["plain", "a=b", " =not-first", "", "-0.25", "+3", "-1e5", ".5", 42, -7, 1.5, None]
)
def test_other_cells_are_left_alone(value: object) -> None:
    assert neutralise_cell(value) == value


def test_written_csv_round_trips_through_the_csv_module() -> None:
    rows = [
        ["name", "score", "note"],
        ["=cmd|'/C calc'!A0", -0.25, 'quote " and, comma'],
        ["multi\nline", "@evil", "-1"],
    ]
    text = csv_text(rows)
    assert text.endswith("\r\n")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        ["name", "score", "note"],
        ["'=cmd|'/C calc'!A0", "-0.25", 'quote " and, comma'],
        ["multi\nline", "'@evil", "-1"],
    ]


def test_writer_streams_rows_and_takes_csv_options() -> None:
    sink = io.StringIO()
    writer = SafeCsvWriter(sink, delimiter=";", lineterminator="\n")
    writer.writerow(["a", "+b"])
    writer.writerows([["c", "=d"]])
    assert sink.getvalue() == "a;'+b\nc;'=d\n"
