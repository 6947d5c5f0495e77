"""Read seed persona files record by record: .txt, .jsonl, .csv (header row) and .parquet.

`read_records` yields `(location, record)` per persona, where a record is the raw field
dict or a `RowProblem` saying why that line cannot be one; `personafoundry.seeds` turns a
problem into `SeedFileError` (strict) or a dropped row (lenient).

Decisions:
- Encoding: UTF-8 (a byte-order mark is allowed). The file is decoded with
  `surrogateescape`, so an undecodable byte spoils only its own line (its own record for
  CSV): that line becomes a `RowProblem` naming the byte; every other line still loads.
  A bad byte in the CSV header spoils the whole file and is always an error.
- Lines end at `\\n`, `\\r\\n` or `\\r` only (not at U+2028, which may sit inside a JSON
  string). Line numbers count from 1; a CSV record spanning lines is named by its last line.
- Empty lines (nothing but whitespace; for CSV, every field empty) are skipped and counted
  in `stats["blank_lines"]`, in strict and lenient mode alike.
- A CSV/Parquet file without the description column is a file error in both modes (a
  wrong `personas.seed_columns` mapping, not a bad row): every row would be dropped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from personafoundry.errors import SeedFileError

SUFFIXES = (".txt", ".jsonl", ".csv", ".parquet")
TEXT_KEYS = ("text", "description")
_LINE_END = re.compile(r"\r\n|\r|\n")
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what `surrogateescape` makes of a bad byte


class RowProblem(ValueError):
    """One bad row; the loader adds file and line. `text` is the row's text, if readable."""

    def __init__(self, message: str, text: str | None = None) -> None:
        super().__init__(message)
        self.text = text


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig", "surrogateescape")


def _bad_byte(text: str) -> RowProblem | None:
    """A `RowProblem` naming the first undecodable byte in `text`, or None."""
    found = _BAD_BYTE.search(text)
    if found is None:
        return None
    byte = ord(found.group()) - 0xDC00
    shown = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    return RowProblem(
        f"not valid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8.", " ".join(shown.split())
    )


def check_file(path: Path, column_map: Mapping[str, str]) -> None:
    """Raise `SeedFileError` for a file that cannot hold seed personas at all."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SeedFileError(
            f"{path}: unsupported seed file type '{path.suffix}'; use one of {', '.join(SUFFIXES)}."
        )
    if not path.is_file():
        raise SeedFileError(f"{path}: file not found; check personas.seed_files.")
    if suffix not in (".csv", ".parquet"):
        return
    if suffix == ".csv":
        header = next(csv.reader(io.StringIO(_read_text(path), newline="")), [])
        problem = _bad_byte(",".join(header))
        if problem is not None:
            raise SeedFileError(f"{path} line 1: header {problem}")
        where = f"{path} line 1"
    else:
        try:
            header = pq.read_schema(path).names
        except (pa.ArrowInvalid, OSError) as err:
            raise SeedFileError(f"{path}: not a readable Parquet file ({err}); re-export it.")
        where = f"{path} schema"
    wanted = [column_map.get(k, k) for k in TEXT_KEYS]
    if not any(w in header for w in wanted):
        raise SeedFileError(
            f'{where}: missing column "{wanted[0]}" (or "{wanted[1]}"); '
            f"columns are {header}; map yours with personas.seed_columns."
        )


def read_records(path: Path, stats: dict[str, int]) -> Iterator[tuple[str, Any]]:
    """(location, raw record or `RowProblem`) per persona; empty lines skipped and counted."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_records(path)
    elif suffix == ".csv":
        yield from _csv_records(path, stats)
    else:
        yield from _line_records(path, suffix, stats)


def _parquet_records(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowInvalid, OSError) as err:
        raise SeedFileError(f"{path}: not a readable Parquet file ({err}); re-export it.") from None
    for i, rec in enumerate(rows, start=1):
        yield f"{path} row {i}", rec


def _csv_records(path: Path, stats: dict[str, int]) -> Iterator[tuple[str, Any]]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = next(reader, [])
    for values in reader:
        where = f"{path} line {reader.line_num}"
        if not any(v.strip() for v in values):  # [] for an empty line, or only commas
            stats["blank_lines"] += 1
            continue
        problem = _bad_byte("\x1f".join(values))
        if problem is not None:
            yield where, problem
        elif len(values) > len(header):
            yield (
                where,
                RowProblem(
                    f"{len(header)} columns in the header but {len(values)} in this row; "
                    "quote values that contain commas."
                ),
            )
        else:
            yield where, dict(zip(header, values))  # missing trailing fields: absent


def _line_records(path: Path, suffix: str, stats: dict[str, int]) -> Iterator[tuple[str, Any]]:
    lines = _LINE_END.split(_read_text(path))
    if lines and lines[-1] == "":
        lines.pop()  # the file's final line end
    for n, line in enumerate(lines, start=1):
        where = f"{path} line {n}"
        if not line.strip():
            stats["blank_lines"] += 1
            continue
        problem = _bad_byte(line)
        if problem is not None:
            yield where, problem
        elif suffix == ".txt":
            yield where, {"text": line}
        else:
            yield where, _json_record(line)


def _json_record(line: str) -> dict[str, Any] | RowProblem:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as err:
        return RowProblem(f"not valid JSON ({err.msg}); write one JSON object per line.")
    if not isinstance(rec, dict):
        return RowProblem(f"a JSON {type(rec).__name__}, not an object; write one object per line.")
    return rec
