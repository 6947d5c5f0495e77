"""Consistency rules for persona demographics, loaded from `seeds/census/rules.toml`.

The rules are data: the sampler reads them to place structural zeros and to bound ages,
and `rule_violations` checks every one of them on any personas table, one named check per
rule, so a test can iterate over the file and the calibration report can show each count.

Decisions:
- Checks only judge rows whose `age` is known; a seed persona with a null age is not a
  violation (its demographics are filled in later and checked then).
- An occupation matches the first requirement whose SOC prefix it starts with; the
  requirement sets a minimum education (by the ACS order in the file) and a minimum age.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from personafoundry.errors import ConfigError
from personafoundry.paths import SEEDS_DIR

RULES_PATH = SEEDS_DIR / "census" / "rules.toml"


@dataclass(frozen=True)
class OccupationRequirement:
    """A degree/licence requirement for occupations whose SOC code starts with a prefix."""

    soc_prefixes: tuple[str, ...]
    min_education: str
    min_age: int
    why: str


@dataclass(frozen=True)
class Rules:
    """The parsed rules file (see `seeds/census/rules.toml` for the meaning of each field)."""

    reference_year: int
    max_age: int
    education_order: tuple[str, ...]
    education_null_below: int
    education_adult_from: int
    education_min_age: dict[str, int]
    child_labels: tuple[tuple[int, int, str], ...]
    marital_null_below: int
    employment_null_below: int
    employed_label: str
    nilf_label: str
    retired_label: str
    retired_from_age: int
    employment_min_age: dict[str, int]
    income_null_below: int
    occupation_default_min_age: int
    requirements: tuple[OccupationRequirement, ...]

    def education_rank(self, label: str) -> int:
        return self.education_order.index(label)

    def requirement_for(self, soc_code: str) -> OccupationRequirement | None:
        """The first requirement whose prefix the SOC code starts with, if any."""
        for req in self.requirements:
            if soc_code.startswith(req.soc_prefixes):
                return req
        return None

    def child_label(self, age: int) -> str | None:
        for lo, hi, label in self.child_labels:
            if lo <= age <= hi:
                return label
        return None


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_PATH) -> Rules:
    """Parse the rules TOML; a malformed file is a `ConfigError` naming the file and key."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        edu, emp, occ = data["education"], data["employment"], data["occupation"]
        reqs = tuple(
            OccupationRequirement(
                tuple(r["soc_prefixes"]), r["min_education"], int(r["min_age"]), r["why"]
            )
            for r in occ.get("requirement", [])
        )
        rules = Rules(
            reference_year=int(data["reference_year"]),
            max_age=int(data["max_age"]),
            education_order=tuple(edu["order"]),
            education_null_below=int(edu["null_below_age"]),
            education_adult_from=int(edu["adult_from_age"]),
            education_min_age={k: int(v) for k, v in edu.get("min_age", {}).items()},
            child_labels=tuple(
                (int(c["min_age"]), int(c["max_age"]), c["label"]) for c in edu["child_label"]
            ),
            marital_null_below=int(data["marital"]["null_below_age"]),
            employment_null_below=int(emp["null_below_age"]),
            employed_label=emp["employed_label"],
            nilf_label=emp["not_in_labor_force_label"],
            retired_label=emp["retired_label"],
            retired_from_age=int(emp["retired_from_age"]),
            employment_min_age={k: int(v) for k, v in emp.get("min_age", {}).items()},
            income_null_below=int(data["income"]["null_below_age"]),
            occupation_default_min_age=int(occ["default_min_age"]),
            requirements=reqs,
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: rules file is malformed ({err!r}); restore its keys.") from None
    unknown = [r.min_education for r in reqs if r.min_education not in rules.education_order]
    unknown += [k for k in rules.education_min_age if k not in rules.education_order]
    if unknown:
        raise ConfigError(f"{path}: unknown education level(s) {unknown}; use education.order.")
    return rules


def _np(table: pa.Table, column: str) -> np.ndarray:
    """Column as a numpy object/float array (nulls become None / nan)."""
    return table[column].to_numpy(zero_copy_only=False)


def rule_violations(table: pa.Table, rules: Rules | None = None) -> dict[str, int]:
    """Count the rows breaking each rule; keys are stable rule names, values are counts.

    Input columns: `schemas/personas.py` (age, education, marital_status, employment_status,
    occupation, soc_code, household_income, household_income_bracket).
    """
    rules = rules or load_rules()
    age_raw = table["age"]
    known = pc.is_valid(age_raw).to_numpy(zero_copy_only=False)
    age = pc.fill_null(age_raw, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    edu, mar = _np(table, "education"), _np(table, "marital_status")
    emp, occ, soc = (
        _np(table, "employment_status"),
        _np(table, "occupation"),
        _np(table, "soc_code"),
    )
    inc = pc.is_valid(table["household_income"]).to_numpy(zero_copy_only=False)
    bracket = _np(table, "household_income_bracket")
    has = {
        "education": edu != None,
        "marital": mar != None,
        "employment": emp != None,
        "occupation": occ != None,
        "soc": soc != None,
        "bracket": bracket != None,
    }
    out: dict[str, np.ndarray] = {
        "age_within_0_max": (age < 0) | (age > rules.max_age),
        "education_null_below_age": (age < rules.education_null_below) & has["education"],
        "marital_null_below_age": (age < rules.marital_null_below) & has["marital"],
        "employment_null_below_age": (age < rules.employment_null_below) & has["employment"],
        "income_null_below_age": (age < rules.income_null_below) & (inc | has["bracket"]),
        "occupation_only_if_employed": has["occupation"] & (emp != rules.employed_label),
        "soc_code_only_with_occupation": has["soc"] != has["occupation"],
        "retired_from_age": (emp == rules.retired_label) & (age < rules.retired_from_age),
        "not_in_labor_force_is_retired_from_age": (emp == rules.nilf_label)
        & (age >= rules.retired_from_age),
    }
    for label, lo in rules.education_min_age.items():
        out[f"education_min_age[{label}]"] = (edu == label) & (age < lo)
    for label, lo in rules.employment_min_age.items():
        out[f"employment_min_age[{label}]"] = (emp == label) & (age < lo)
    child = np.zeros(len(age), dtype=bool)
    for lo, hi, label in rules.child_labels:
        child |= ((edu == label) & ((age < lo) | (age > hi))) | (
            (age >= lo) & (age <= hi) & has["education"] & (edu != label)
        )
    out["child_education_label_matches_age"] = child
    adult_levels = np.isin(edu, list(rules.education_order))
    out["adult_education_is_attainment"] = (
        (age >= rules.education_adult_from) & has["education"] & ~adult_levels
    )
    out.update(_occupation_violations(soc, edu, age, rules))
    return {name: int((mask & known).sum()) for name, mask in out.items()}


def _occupation_violations(
    soc: np.ndarray, edu: np.ndarray, age: np.ndarray, rules: Rules
) -> dict[str, np.ndarray]:
    """Occupations that do not fit the persona's age or education."""
    rank = {label: i for i, label in enumerate(rules.education_order)}
    too_young = (soc != None) & (age < rules.occupation_default_min_age)
    under_educated = np.zeros(len(soc), dtype=bool)
    codes, inverse = np.unique(np.where(soc == None, "", soc).astype(str), return_inverse=True)
    edu_rank = pd.Series(edu, dtype=object).map(rank).fillna(-1).to_numpy(np.int64)
    for i, code in enumerate(codes):
        req = rules.requirement_for(code) if code else None
        if req is None:
            continue
        rows = inverse == i
        too_young |= rows & (age < req.min_age)
        under_educated |= rows & (edu_rank < rank[req.min_education])
    return {"occupation_min_age": too_young, "occupation_min_education": under_educated}
