"""Validate one raw seed record (a field dict from `seed_files`) into persona fields.

`parse_row` checks types and labels and raises `RowProblem` naming the column, the value
and what is expected; `stated_of` merges what the text states with the columns. The
loader (`personafoundry.seeds`) adds file and line and applies strict/lenient mode.

Decisions:
- Labels must be the ACS labels the census sampler uses (`seeds/census/`); every label is
  matched case-insensitively, sex also as `M`/`F`.
- Ages are whole numbers 0-120 and incomes whole USD >= 0 ("30.0" is 30; "30.5" is not).
- A stated income and bracket must agree; a bracket alone is kept, an income alone gives
  its bracket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from personafoundry import census_tables as ct
from personafoundry.rules import load_rules
from personafoundry.seed_files import TEXT_KEYS, RowProblem
from personafoundry.seed_text import Stated, match_title, parse_seed_text, with_file_values

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
