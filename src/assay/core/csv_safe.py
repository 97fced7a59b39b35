"""CSV that spreadsheet applications will not execute (formula injection).

Excel, LibreOffice and Google Sheets evaluate a cell whose text begins with ``=``,
``+``, ``-`` or ``@`` as a formula (tab and carriage return can hide such a start), so
a value a user typed, exported to CSV, can run ``=HYPERLINK(...)`` or worse on the
analyst who opens it. Such cells are written with a leading single quote, which
spreadsheets display as text and do not evaluate (OWASP's recommendation). Plain
numbers are left as they are, so a score of ``-0.25`` stays a number. Quoting and
separators are left to the standard `csv` module.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _TextSink(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralise_cell(value: object) -> object:
    """`value`, with a text cell that a spreadsheet would evaluate turned into literal text."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_TRIGGERS)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


class SafeCsvWriter:
    """`csv.writer` whose every cell goes through `neutralise_cell`."""

    def __init__(self, sink: _TextSink, **fmtparams: Any) -> None:
        # RFC 4180 line endings unless the caller says otherwise.
        fmtparams.setdefault("lineterminator", "\r\n")
        self._writer = csv.writer(sink, **fmtparams)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([neutralise_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_text(rows: Iterable[Iterable[object]], **fmtparams: Any) -> str:
    """Rows rendered as safe CSV text."""
    buffer = io.StringIO()
    SafeCsvWriter(buffer, **fmtparams).writerows(rows)
    return buffer.getvalue()
