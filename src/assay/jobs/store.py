"""Where a job's input and result rows live: files under the data directory, keyed by
job id (shared by every worker that runs jobs), never database rows.

The input is stored as uploaded and scanned once, streaming: its rows are counted and
the byte offset of each chunk's first row is kept, so a worker seeks straight to its
chunk. Results are written one segment per checkpoint, named by the index of its first
row and replaced atomically, so a segment written again after a crash is the same file;
a reader takes from each chunk only the rows its committed checkpoint covers, so every
row appears exactly once.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import shutil
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from assay.core.errors import PayloadTooLarge, ValidationFailed

InputFormat = Literal["csv", "jsonl"]
_COPY_BLOCK = 1 << 16
# The one CSV dialect read: RFC 4180 (comma, double quotes); a field is at most this long.
_MAX_CSV_FIELD = 1 << 20
csv.field_size_limit(_MAX_CSV_FIELD)


@dataclass(frozen=True, slots=True)
class InputLimits:
    max_bytes: int
    max_rows: int
    max_columns: int


@dataclass(frozen=True, slots=True)
class ScannedInput:
    """What the scan found: rows, the CSV header, each chunk's (first row, byte offset)."""

    rows: int
    header: list[str] | None
    chunk_offsets: list[int]


@dataclass(frozen=True, slots=True)
class InputRow:
    """One input row: its index in the file, and the record or why it could not be read."""

    index: int
    record: object
    problem: str | None = None


class JobStore:
    """The job files under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, job_id: uuid.UUID) -> Path:
        return self.root / job_id.hex

    def input_path(self, job_id: uuid.UUID, fmt: InputFormat) -> Path:
        return self.directory(job_id) / f"input.{fmt}"

    def results_directory(self, job_id: uuid.UUID) -> Path:
        return self.directory(job_id) / "results"

    def remove(self, job_id: uuid.UUID) -> None:
        shutil.rmtree(self.directory(job_id), ignore_errors=True)

    # --- input ------------------------------------------------------------------------

    def save_input(
        self,
        job_id: uuid.UUID,
        fmt: InputFormat,
        source: IO[bytes],
        limits: InputLimits,
        chunk_rows: int,
    ) -> ScannedInput:
        """Copy `source` into the store and scan it; blocking (run it in a thread)."""
        path = self.input_path(job_id, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            _copy_limited(source, path, limits.max_bytes)
            if fmt == "csv":
                return _scan_csv(path, limits, chunk_rows)
            return _scan_jsonl(path, limits, chunk_rows)
        except BaseException:
            self.remove(job_id)
            raise

    def read_rows(
        self,
        job_id: uuid.UUID,
        fmt: InputFormat,
        header: list[str] | None,
        offset: int,
        first_row: int,
        skip: int,
        count: int,
    ) -> Generator[InputRow, None, None]:
        """`count` rows from the chunk starting at byte `offset` (row `first_row`), after
        skipping `skip` of them; blocking."""
        with self.input_path(job_id, fmt).open("rb") as source:
            source.seek(offset)
            if fmt == "csv":
                rows: Iterator[InputRow] = _csv_rows(source, header or [], first_row)
            else:
                rows = _jsonl_rows(source, first_row)
            for position, row in enumerate(rows):
                if position >= skip + count:
                    return
                if position >= skip:
                    yield row

    # --- results ----------------------------------------------------------------------

    def write_segment(self, job_id: uuid.UUID, first_row: int, lines: Iterable[str]) -> None:
        """Write one segment of result lines, atomically (same name for the same rows)."""
        directory = self.results_directory(job_id)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{first_row:012d}.jsonl"
        temporary = directory / f".{first_row:012d}.{uuid.uuid4().hex}.tmp"
        with temporary.open("w", encoding="utf-8") as sink:
            for line in lines:
                sink.write(line)
                sink.write("\n")
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, final)

    def committed_results(
        self, job_id: uuid.UUID, ranges: Iterable[tuple[int, int]]
    ) -> Iterator[dict[str, Any]]:
        """Result rows, in row order, each once: those inside the committed `ranges`
        (first row, row count) of each chunk; blocking."""
        directory = self.results_directory(job_id)
        wanted = sorted((start, start + size) for start, size in ranges if size > 0)
        if not wanted or not directory.is_dir():
            return
        segments = sorted(
            (int(path.stem), path) for path in directory.glob("*.jsonl") if path.stem.isdigit()
        )
        emitted = -1
        for start, end in wanted:
            for first, path in segments:
                if first >= end:
                    break
                with path.open(encoding="utf-8") as lines:
                    for line in lines:
                        row = json.loads(line)
                        index = row["row"]
                        if index >= end:
                            break
                        if index < start or index <= emitted:
                            continue
                        emitted = index
                        yield row


def _copy_limited(source: IO[bytes], path: Path, max_bytes: int) -> None:
    written = 0
    with path.open("wb") as sink:
        while block := source.read(_COPY_BLOCK):
            written += len(block)
            if written > max_bytes:
                raise PayloadTooLarge(f"The job input exceeds the limit of {max_bytes} bytes.")
            sink.write(block)


def _lines_with_offsets(source: IO[bytes], start: int) -> tuple[Iterator[str], list[int]]:
    """Decoded lines of `source`, and a one-item list holding the byte offset after the
    last line taken (the csv module pulls lines one at a time)."""
    position = [start]
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")

    def lines() -> Iterator[str]:
        for raw in source:
            position[0] += len(raw)
            yield decoder.decode(raw)

    return lines(), position


def _refuse_input(message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": "file", "code": code, "message": message}])


def _scan_csv(path: Path, limits: InputLimits, chunk_rows: int) -> ScannedInput:
    with path.open("rb") as source:
        if source.read(3) != codecs.BOM_UTF8:
            source.seek(0)
        lines, position = _lines_with_offsets(source, source.tell())
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
            if not header or not any(name.strip() for name in header):
                raise _refuse_input("The CSV file has no header row.", "no_header")
            if len(header) > limits.max_columns:
                raise _refuse_input(
                    f"The CSV file has {len(header)} columns; at most {limits.max_columns}.",
                    "too_many_columns",
                )
            names = [name.strip() for name in header]
            if len(set(names)) != len(names) or not all(names):
                raise _refuse_input("CSV column names must be unique and not empty.", "header")
            offsets: list[int] = []
            rows = 0
            start = position[0]
            for values in reader:
                if values:
                    if rows % chunk_rows == 0:
                        offsets.append(start)
                    rows += 1
                    if rows > limits.max_rows:
                        raise _too_many_rows(limits)
                start = position[0]
        except UnicodeDecodeError as exc:
            raise _refuse_input("The file is not UTF-8 text.", "encoding") from exc
        except csv.Error as exc:
            raise _refuse_input(f"The CSV file is malformed: {exc}.", "malformed") from exc
    return ScannedInput(rows, names, offsets)


def _scan_jsonl(path: Path, limits: InputLimits, chunk_rows: int) -> ScannedInput:
    offsets: list[int] = []
    rows = 0
    start = 0
    with path.open("rb") as source:
        for raw in source:
            if raw.strip():
                if rows % chunk_rows == 0:
                    offsets.append(start)
                rows += 1
                if rows > limits.max_rows:
                    raise _too_many_rows(limits)
            start += len(raw)
    return ScannedInput(rows, None, offsets)


def _too_many_rows(limits: InputLimits) -> ValidationFailed:
    return _refuse_input(f"The input has more than {limits.max_rows} rows.", "too_many_rows")


def _csv_rows(source: IO[bytes], header: list[str], first_row: int) -> Iterator[InputRow]:
    lines, _ = _lines_with_offsets(source, 0)
    index = first_row
    for values in csv.reader(lines, strict=True):
        if not values:
            continue
        if len(values) != len(header):
            yield InputRow(index, None, f"has {len(values)} values; the header has {len(header)}")
        else:
            # An empty cell is an absent value, as a missing key is in JSON.
            yield InputRow(index, {k: v for k, v in zip(header, values, strict=True) if v != ""})
        index += 1


def _jsonl_rows(source: IO[bytes], first_row: int) -> Iterator[InputRow]:
    index = first_row
    for raw in source:
        if not raw.strip():
            continue
        try:
            yield InputRow(index, json.loads(raw))
        except (ValueError, RecursionError):
            yield InputRow(index, None, "is not valid JSON")
        index += 1
