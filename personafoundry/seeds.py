"""Read seed personas from .txt, .jsonl, .csv and .parquet files into persona rows.

Formats (read by `personafoundry.seed_files`):
- `.txt`: one description per line (Persona-Chat profile sentences or a PersonaHub
  one-liner).
- `.jsonl`: one JSON object per line with `text` (or `description`) and optional fields.
- `.csv` (header row) and `.parquet`: the same fields as columns.
Optional fields: `id` (checked for duplicates, not stored), `name` and the demographic
columns of `schemas/personas.py`. `column_map` (config `personas.seed_columns`) maps a
field to the file's column name, e.g. `{"text": "persona"}`.

Decisions:
- Empty lines (whitespace only; a CSV row of empty fields) are skipped and counted in
  `stats["blank_lines"]` in strict and lenient mode alike, and still count for line
  numbers. No config switch: an empty line carries no persona, so there is nothing to
  keep or to reject; editors add them at file ends and between groups. A file with no
  persona at all is an error (strict). A row whose description field is empty while other
  fields are set is a bad row (a lost description), not an empty line.
- Encoding: UTF-8 (BOM allowed). An undecodable byte spoils only its line: strict mode
  stops there naming file, line and byte; lenient mode drops that line with reason
  "not valid UTF-8 (byte 0x..)" and loads the rest.
- A seed row keeps what its columns and its text state (`seed_text.parse_seed_text`);
  every other demographic is sampled from the census joint conditionally on that
  (`census_condition.complete_seed_rows`), so seed rows are complete, obey rules.toml and
  name the census vintage. Text that contradicts a column ("I am 34", age 40), or
  statements no census person fits, are bad rows like any other.
  `seed_text` is the description.
- persona_id = make_id("per", rng_seed, "seed", text): the same text is the same persona, so
  a repeated description is a duplicate (as is a repeated `id`, across all files loaded).
- Names: a name the file gives is kept; the same name given twice (compared case- and
  space-insensitively) is a bad row, since names are unique within a release. Rows
  without one get a census/SSA name that no other seed row has (`unique_names`).
- Strict mode raises `SeedFileError` on the first bad row, naming file, line (or row for
  Parquet), the problem and the fix; lenient mode moves the row to `dropped` with that
  message as `reason` and counts it. File-level problems (unsupported type, missing file,
  no description column, unreadable Parquet, undecodable CSV header) raise in both modes.
- Values and labels are checked by `personafoundry.seed_rows` (ACS labels, ages 0-120).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from personafoundry.census import PersonaSample, census_provenance
from personafoundry.errors import SeedFileError
from personafoundry.ids import make_id
from personafoundry.seed_files import RowProblem, check_file, read_records
from personafoundry.seed_rows import parse_row, stated_of
from personafoundry.unique_names import unique_table_names
from schemas.personas import SCHEMA

DROPPED_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("location", pa.string()),
        ("seed_text", pa.string()),
        ("reason", pa.string()),
    ]
)


def load_seed_personas(
    paths: list[Path],
    *,
    rng_seed: int,
    strict: bool = True,
    column_map: Mapping[str, str] | None = None,
    complete: bool = True,
) -> PersonaSample:
    """Read seed persona files into persona rows (`schemas/personas.py`), source = "seed".

    Raises `SeedFileError` (strict) naming file, line/row, problem and fix; lenient mode puts
    bad rows in `dropped` with the same message as `reason`. `complete=False` skips the
    census completion (unstated demographics and names stay null), for loader tests.
    """
    column_map = dict(column_map or {})
    stats = {"seed_rows": 0, "seed_dropped": 0, "blank_lines": 0, "seed_files": len(paths)}
    dropped: list[dict[str, Any]] = []
    rows = _read_rows([Path(p) for p in paths], column_map, strict, complete, stats, dropped)
    full = [
        {**row, "persona_id": make_id("per", rng_seed, "seed", row["seed_text"]),
         "source": "seed", "facts": [], "critic_scores": [], "rounds": 0}
        for row in rows
    ]  # fmt: skip
    if complete and full:
        full = _complete(full, dropped, strict, rng_seed, stats)
    table = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if not k.startswith("_")} for r in full],
        schema=SCHEMA.arrow_schema(),
    )
    if complete and full:
        table = _unique_names(table, full, dropped, strict, rng_seed)
    stats["seed_rows"], stats["seed_dropped"] = table.num_rows, len(dropped)
    provenance = {"source": "seed", "files": [str(p) for p in paths], "strict": strict}
    if complete:
        provenance["census"] = census_provenance()
    return PersonaSample(table, pa.Table.from_pylist(dropped, DROPPED_SCHEMA), stats, provenance)


def _read_rows(
    paths: list[Path],
    column_map: Mapping[str, str],
    strict: bool,
    complete: bool,
    stats: dict[str, int],
    dropped: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Parsed rows of every file in order; bad rows raise (strict) or go to `dropped`."""
    rows: list[dict[str, Any]] = []
    seen: dict[str, dict[str, str]] = {"text": {}, "id": {}, "name": {}}
    for path in paths:
        check_file(path, column_map)
        before = len(rows) + len(dropped)
        for where, rec in read_records(path, stats):
            try:
                if isinstance(rec, RowProblem):
                    raise rec
                row = parse_row(rec, column_map)
                if complete:
                    row["_stated"] = stated_of(row)
                _check_repeats(row, seen)
            except RowProblem as problem:
                if strict:
                    raise SeedFileError(f"{where}: {problem}") from None
                text = problem.text if isinstance(rec, RowProblem) else rec.get(
                    column_map.get("text", "text")
                )  # fmt: skip
                _drop(dropped, where, None if text is None else str(text), str(problem))
                continue
            for field, key in _repeat_keys(row).items():
                seen[field][key] = where
            row.pop("id", None)
            rows.append({**row, "_where": where, "_given_name": "name" in row})
        if len(rows) + len(dropped) == before and strict:
            raise SeedFileError(f"{path}: no personas found; add one description per line.")
    return rows


def _repeat_keys(row: dict[str, Any]) -> dict[str, str]:
    """What must not repeat across the loaded files: description, id and given name."""
    keys = {"text": row["seed_text"].lower()}
    if "id" in row:
        keys["id"] = str(row["id"])
    if "name" in row:
        keys["name"] = " ".join(row["name"].split()).casefold()
    return keys


def _check_repeats(row: dict[str, Any], seen: dict[str, dict[str, str]]) -> None:
    keys = _repeat_keys(row)
    if keys["text"] in seen["text"]:
        raise RowProblem(
            f"same description as {seen['text'][keys['text']]}; remove one or edit it."
        )
    if keys.get("id") in seen["id"]:
        raise RowProblem(
            f'id "{row["id"]}" already used at {seen["id"][keys["id"]]}; ids must be unique.'
        )
    if keys.get("name") in seen["name"]:
        raise RowProblem(
            f'name "{row["name"]}" already used at {seen["name"][keys["name"]]}; names are '
            "unique within a release: change or remove one."
        )


def _drop(dropped: list[dict[str, Any]], where: str, text: str | None, reason: str) -> None:
    source = where.rsplit(" line ", 1)[0].rsplit(" row ", 1)[0]
    dropped.append({"source_file": source, "location": where, "seed_text": text, "reason": reason})


def _complete(
    rows: list[dict[str, Any]],
    dropped: list[dict[str, Any]],
    strict: bool,
    rng_seed: int,
    stats: dict[str, int],
) -> list[dict[str, Any]]:
    """Census-conditional demographics for every row; impossible rows are bad rows."""
    from personafoundry.census_condition import complete_seed_rows

    stated = [r["_stated"] for r in rows]
    done = complete_seed_rows(rows, stated, rng_seed=rng_seed)
    kept = []
    for row, st, result in zip(rows, stated, done):
        if isinstance(result, str):
            if strict:
                raise SeedFileError(f"{row['_where']}: {result}; edit or remove the row.")
            _drop(dropped, row["_where"], row["seed_text"], result)
            continue
        for cue in st.cues:
            stats[f"stated_{cue}"] = stats.get(f"stated_{cue}", 0) + 1
        kept.append({**result, "_where": row["_where"], "_given_name": row["_given_name"]})
    return kept


def _unique_names(
    table: pa.Table,
    rows: list[dict[str, Any]],
    dropped: list[dict[str, Any]],
    strict: bool,
    rng_seed: int,
) -> pa.Table:
    """Drawn names unique among the seed rows; given names stay (their repeats are bad rows,
    see `_check_repeats`). A row left without an unused name is a bad row too."""
    given = np.array([r["_given_name"] for r in rows], dtype=bool)
    table, unresolved = unique_table_names(table, given, rng_seed=rng_seed)
    for i in np.flatnonzero(unresolved):
        reason = f"no unused census/SSA name for this persona ({rows[i]['name']!r} is taken)"
        if strict:
            raise SeedFileError(f"{rows[i]['_where']}: {reason}; add a name column.")
        _drop(dropped, rows[i]["_where"], rows[i]["seed_text"], reason)
    return table.filter(pa.array(~unresolved)) if unresolved.any() else table
