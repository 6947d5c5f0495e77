"""Read seed personas from .txt, .jsonl, .csv and .parquet files into persona rows.

Formats:
- `.txt`: one description per line (Persona-Chat profile sentences or a PersonaHub
  one-liner); blank lines are skipped and counted (`stats["blank_lines"]`).
- `.jsonl`: one JSON object per line with `text` (or `description`) and optional fields.
- `.csv` (header row) and `.parquet`: the same fields as columns.
Optional fields: `id` (checked for duplicates, not stored), `name` and the demographic
columns of `schemas/personas.py`. `column_map` (config `personas.seed_columns`) maps a
field to the file's column name, e.g. `{"text": "persona"}`.

Decisions:
- A seed row keeps what its columns and its text state (`seed_text.parse_seed_text`);
  every other demographic is sampled from the census joint conditionally on that
  (`census_condition.complete_seed_rows`), so seed rows are complete, obey rules.toml and
  name the census vintage. Text that contradicts a column ("I am 34", age 40), or
  statements no census person fits, are bad rows like any other.
  `seed_text` is the description.
- persona_id = make_id("per", rng_seed, "seed", text): the same text is the same persona, so
  a repeated description is a duplicate (as is a repeated `id`).
- Strict mode raises `SeedFileError` on the first bad row, naming file, line (or row for
  Parquet), the problem and the fix; lenient mode moves the row to `dropped` with that
  message as `reason` and counts it.
- Labels must be the ACS labels the census sampler uses (`seeds/census/`); sex and state are
  matched case-insensitively, `M`/`F` accepted.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from personafoundry import census_tables as ct
from personafoundry.census import PersonaSample, census_provenance
from personafoundry.errors import SeedFileError
from personafoundry.ids import make_id
from personafoundry.rules import load_rules
from personafoundry.seed_text import Stated, match_title, parse_seed_text, with_file_values
from schemas.personas import SCHEMA

TEXT_KEYS = ("text", "description")
LABEL_FIELDS = (
    "race_ethnicity",
    "education",
    "employment_status",
    "marital_status",
    "household_income_bracket",
)
FIELDS = (
    "id",
    "age",
    "sex",
    "state",
    "occupation",
    "soc_code",
    "household_income",
    "name",
    *LABEL_FIELDS,
)
SUFFIXES = (".txt", ".jsonl", ".csv", ".parquet")
DROPPED_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("location", pa.string()),
        ("seed_text", pa.string()),
        ("reason", pa.string()),
    ]
)


class RowProblem(ValueError):
    """One bad value in one row; the loader adds file and line."""


@lru_cache(maxsize=1)
def allowed_labels() -> dict[str, tuple[str, ...]]:
    """Accepted values per label field: the census sampler's labels."""
    rules, marg = load_rules(), ct.read_marginals()
    return {
        "race_ethnicity": marg["race_ethnicity"].categories,
        "education": (*rules.education_order, *sorted({c[2] for c in rules.child_labels})),
        "employment_status": (*marg["employment_status_16plus"].categories, rules.retired_label),
        "marital_status": marg["marital_status_male_15plus"].categories,
        "household_income_bracket": marg["household_income"].categories,
        "state": ct.read_states()[0],
        "sex": marg["sex"].categories,
    }


def _pick(raw: Mapping[str, Any], key: str, column_map: Mapping[str, str]) -> Any:
    value = raw.get(column_map.get(key, key))
    if isinstance(value, str):
        value = value.strip()
    return None if value in ("", None) else value


def _label(field: str, value: Any) -> str:
    allowed = allowed_labels()[field]
    text = str(value)
    if field == "sex" and text.upper() in ("M", "F"):
        text = {"M": "Male", "F": "Female"}[text.upper()]
    match = next((a for a in allowed if a.lower() == text.lower()), None)
    if match is None:
        shown = ", ".join(f'"{a}"' for a in allowed[:8]) + (", ..." if len(allowed) > 8 else "")
        raise RowProblem(f'column "{field}" is "{value}"; expected one of {shown}.')
    return match


def _integer(field: str, value: Any, lo: int, hi: int | None) -> int:
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
        if number != int(number):
            raise ValueError
        number = int(number)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or number < lo or (hi is not None and number > hi):
        span = f"{lo}-{hi}" if hi is not None else f">= {lo}"
        raise RowProblem(f'column "{field}" is "{value}"; expected an integer {span}.')
    return number


def parse_row(raw: Mapping[str, Any], column_map: Mapping[str, str]) -> dict[str, Any]:
    """Validate one seed record into persona fields; raises `RowProblem` naming the column."""
    text = next((_pick(raw, k, column_map) for k in TEXT_KEYS if _pick(raw, k, column_map)), None)
    if not isinstance(text, str) or not text:
        wanted = column_map.get("text", "text")
        raise RowProblem(
            f'column "{wanted}" (or "description") is missing or empty; '
            "give every persona a description."
        )
    row: dict[str, Any] = {"seed_text": " ".join(text.split())}
    for field in FIELDS:
        value = _pick(raw, field, column_map)
        if value is None:
            continue
        if field == "age":
            value = _integer(field, value, 0, 120)
        elif field == "household_income":
            value = _integer(field, value, 0, None)
        elif field in (*LABEL_FIELDS, "sex", "state"):
            value = _label(field, value)
        elif field == "soc_code" and not re.fullmatch(r"\d{2}-\d{4}", str(value)):
            raise RowProblem(f'column "soc_code" is "{value}"; expected a SOC code like 29-1141.')
        row[field] = value if field in ("age", "household_income") else str(value)
    if "household_income" in row:
        bracket = _bracket_of(row["household_income"])
        if row.setdefault("household_income_bracket", bracket) != bracket:
            raise RowProblem(
                f'column "household_income_bracket" is "{row["household_income_bracket"]}" '
                f'but household_income {row["household_income"]} is in "{bracket}"; '
                "fix one of them."
            )
    return row


def _bracket_of(income: int) -> str:
    for label in allowed_labels()["household_income_bracket"]:
        lo, hi = ct.bracket_bounds(label)
        if income >= lo and (hi is None or income <= hi):
            return label
    raise RowProblem(f"household_income {income} fits no ACS bracket.")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SeedFileError(
            f"{path} line {line}: not valid UTF-8 (byte 0x{data[err.start]:02x}); "
            "save the file as UTF-8."
        ) from None


def _records(path: Path, stats: dict[str, int]) -> Iterator[tuple[str, Any]]:
    """(location, raw record) per persona in the file; blank lines skipped and counted."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            rows = pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError) as err:
            raise SeedFileError(
                f"{path}: not a readable Parquet file ({err}); re-export it."
            ) from None
        for i, rec in enumerate(rows, start=1):
            yield f"{path} row {i}", rec
        return
    text = _decode(path)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for rec in reader:
            if not any((v or "").strip() for v in rec.values() if isinstance(v, str)):
                stats["blank_lines"] += 1
                continue
            if None in rec:
                yield (
                    f"{path} line {reader.line_num}",
                    RowProblem(
                        f"{len(reader.fieldnames or [])} columns in the header but more in this row; "
                        "quote values that contain commas."
                    ),
                )
                continue
            yield f"{path} line {reader.line_num}", rec
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            stats["blank_lines"] += 1
            continue
        if suffix == ".txt":
            yield f"{path} line {n}", {"text": line}
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            rec = RowProblem(f"not valid JSON ({err.msg}); write one JSON object per line.")
        if not isinstance(rec, (dict, RowProblem)):
            rec = RowProblem(
                f"a JSON {type(rec).__name__}, not an object; write one object per line."
            )
        yield f"{path} line {n}", rec


def _check_file(path: Path, column_map: Mapping[str, str]) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise SeedFileError(
            f"{path}: unsupported seed file type '{path.suffix}'; use one of {', '.join(SUFFIXES)}."
        )
    if not path.is_file():
        raise SeedFileError(f"{path}: file not found; check personas.seed_files.")
    if path.suffix.lower() in (".csv", ".parquet"):
        columns = (
            next(csv.reader(io.StringIO(_decode(path))), [])
            if path.suffix.lower() == ".csv"
            else pq.read_schema(path).names
        )
        wanted = [column_map.get(k, k) for k in TEXT_KEYS]
        if not any(w in columns for w in wanted):
            raise SeedFileError(
                f'{path} line 1: missing column "{wanted[0]}" (or "{wanted[1]}"); '
                f"columns are {columns}; map yours with personas.seed_columns."
            )


def stated_of(row: dict[str, Any]) -> Stated:
    """What a parsed seed row states (text cues merged with its columns); `RowProblem` if
    the text contradicts a column or a column names no OEWS occupation."""
    from personafoundry.census_condition import soc_by_title

    titles = soc_by_title()
    if row.get("occupation") and not row.get("soc_code"):
        soc = match_title(row["occupation"], titles)
        if soc is None:
            raise RowProblem(
                f'column "occupation" is "{row["occupation"]}", not a BLS OEWS detailed title; '
                "add a soc_code column (e.g. 29-1141)."
            )
        row["soc_code"] = soc
    stated, conflicts = with_file_values(parse_seed_text(row["seed_text"], titles), row)
    if conflicts:
        raise RowProblem("; ".join(conflicts) + "; make the text and the columns agree.")
    return stated


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
    census completion (unstated demographics stay null), for loader tests and counts.
    """
    column_map = dict(column_map or {})
    stats = {"seed_rows": 0, "seed_dropped": 0, "blank_lines": 0, "seed_files": len(paths)}
    rows: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    seen_text: dict[str, str] = {}
    seen_id: dict[str, str] = {}
    for path in map(Path, paths):
        _check_file(path, column_map)
        before = len(rows) + len(dropped)
        for where, rec in _records(path, stats):
            try:
                if isinstance(rec, RowProblem):
                    raise rec
                row = parse_row(rec, column_map)
                if complete:
                    row["_stated"] = stated_of(row)
                row["_where"] = where
                key = row["seed_text"].lower()
                if key in seen_text:
                    raise RowProblem(
                        f"same description as {seen_text[key]}; remove one or edit it."
                    )
                if "id" in row and row["id"] in seen_id:
                    raise RowProblem(
                        f'id "{row["id"]}" already used at {seen_id[row["id"]]}; '
                        "ids must be unique."
                    )
            except RowProblem as problem:
                if strict:
                    raise SeedFileError(f"{where}: {problem}") from None
                text = rec.get(column_map.get("text", "text")) if isinstance(rec, dict) else None
                dropped.append(
                    {
                        "source_file": str(path),
                        "location": where,
                        "seed_text": None if text is None else str(text),
                        "reason": str(problem),
                    }
                )
                continue
            seen_text[key] = where
            if "id" in row:
                seen_id[row.pop("id")] = where
            rows.append(row)
        if len(rows) + len(dropped) == before and strict:
            raise SeedFileError(f"{path}: no personas found; add one description per line.")
    full = [
        {**row, "persona_id": make_id("per", rng_seed, "seed", row["seed_text"]),
         "source": "seed", "facts": [], "critic_scores": [], "rounds": 0}
        for row in rows
    ]  # fmt: skip
    if complete and full:
        full = _complete(full, dropped, strict, rng_seed, stats)
    stats["seed_rows"], stats["seed_dropped"] = len(full), len(dropped)
    table = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if not k.startswith("_")} for r in full],
        schema=SCHEMA.arrow_schema(),
    )
    provenance = {"source": "seed", "files": [str(p) for p in paths], "strict": strict}
    if complete:
        provenance["census"] = census_provenance()
    return PersonaSample(table, pa.Table.from_pylist(dropped, DROPPED_SCHEMA), stats, provenance)


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
            where = row["_where"]
            dropped.append({"source_file": where.rsplit(" line ", 1)[0].rsplit(" row ", 1)[0],
                            "location": where, "seed_text": row["seed_text"], "reason": result})  # fmt: skip
            continue
        for cue in st.cues:
            stats[f"stated_{cue}"] = stats.get(f"stated_{cue}", 0) + 1
        kept.append(result)
    return kept
