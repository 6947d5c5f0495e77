"""Read the census tables shipped in `seeds/census/` into the arrays the sampler needs.

Every number comes from a file listed in `seeds/census/SOURCES.md`; this module only
filters, sums and reshapes. Labels (sex, race, education, marital status, employment,
occupation groups, income brackets) are the ACS 2023 labels exactly as the files spell them.

Assumptions (also in SOURCES.md):
- Age groups: the 13 DP05 bands are split further at the DP05 "N years and over" counts
  (16, 18, 21, 62, 65), so universe edges (15 marital, 16 employment, 18 adults) fall on
  group edges. Within a group single years are equally likely, except in the open top band
  "85 years and over": there ages fall geometrically, with the yearly ratio fitted so that
  the band continues the previous band (`q**w = top / (prev + top)`, w = width of the
  previous band), capped at `max_age` from rules.toml.
- Household income: uniform within each closed ACS bracket; the open top bracket
  ("$200,000 or more") is Pareto with the shape that makes the overall mean equal the ACS
  mean household income (DP03_0063).
- State: PEP Vintage 2023 shares (50 states + DC), independent of the other attributes
  (no state cross-tables are shipped).
- Occupations: BLS OEWS May 2025 detailed rows, grouped into the 5 ACS occupation groups
  by SOC major group (11-29, 31-39, 41-43, 45-49, 51-53); within a group an occupation's
  weight is its OEWS employment (jobs, excluding the self-employed).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from personafoundry.errors import ConfigError
from personafoundry.paths import SEEDS_DIR
from personafoundry.rules import Rules

CENSUS_DIR = SEEDS_DIR / "census"
MARGINALS_FILE = "acs2023_1yr_us_marginals.csv"
PROFILE_FILE = "acs2023_1yr_us_profile_long.csv"
STATES_FILE = "pep_v2023_state_population.csv"
OCCUPATIONS_FILE = "bls_oews_may2025_national_occupations.csv"
SAMPLE_2012_FILE = "acs2012_openintro_sample.csv"
VINTAGE = "ACS 2023 1-year (DP02, DP03, DP05); PEP Vintage 2023; BLS OEWS May 2025"
TABLES = (
    "ACSDP1Y2023.DP02",
    "ACSDP1Y2023.DP03",
    "ACSDP1Y2023.DP05",
    "NST-EST2023-ALLDATA",
    "OEWS May 2025 national",
    "ACS 2012 OpenIntro acs12 (seed of the joint)",
)
# DP05 "N years and over" rows used to split the age bands.
AGE_OVER_VARIABLES = ("DP05_0020", "DP05_0021", "DP05_0022", "DP05_0023", "DP05_0024")
# SOC major-group code ranges of the five ACS occupation groups, in the file's order.
ACS_OCCUPATION_SOC_RANGES = ((11, 29), (31, 39), (41, 43), (45, 49), (51, 53))


@dataclass(frozen=True)
class Marginal:
    """One ACS dimension: categories in file order and their estimates (counts)."""

    dimension: str
    categories: tuple[str, ...]
    estimates: np.ndarray
    table: str
    variables: tuple[str, ...]

    @property
    def shares(self) -> np.ndarray:
        return self.estimates / self.estimates.sum()


@dataclass(frozen=True)
class AgeGroups:
    """Age groups (inclusive bounds), their population counts and single-year weights."""

    lo: np.ndarray
    hi: np.ndarray
    counts: np.ndarray
    year_weights: np.ndarray  # index = age 0..max_age; sums to the population


@dataclass(frozen=True)
class Occupations:
    """Detailed OEWS occupations with their ACS group and rule-derived requirements."""

    soc_code: np.ndarray
    title: np.ndarray
    group: np.ndarray  # index into the ACS occupation_group categories
    employment: np.ndarray
    min_edu_rank: np.ndarray  # -1 = no requirement
    min_age: np.ndarray


def read_marginals(path: Path = CENSUS_DIR / MARGINALS_FILE) -> dict[str, Marginal]:
    """The curated ACS 2023 marginals file, one `Marginal` per dimension (not `summary`)."""
    rows: dict[str, list[dict[str, str]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["dimension"], []).append(row)
    return {
        dim: Marginal(
            dim,
            tuple(r["category"] for r in items),
            np.array([float(r["estimate"]) for r in items]),
            items[0]["table"],
            tuple(r["variable"] for r in items),
        )
        for dim, items in rows.items()
        if dim != "summary"
    }


def read_summary(path: Path = CENSUS_DIR / MARGINALS_FILE) -> dict[str, float]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {
            r["category"]: float(r["estimate"])
            for r in csv.DictReader(fh)
            if r["dimension"] == "summary"
        }


def read_profile(variables: tuple[str, ...], path: Path = CENSUS_DIR / PROFILE_FILE) -> dict:
    with open(path, newline="", encoding="utf-8") as fh:
        return {
            r["variable"]: float(r["estimate"])
            for r in csv.DictReader(fh)
            if r["variable"] in variables
        }


def band_bounds(label: str, max_age: int) -> tuple[int, int]:
    """`Under 5 years` -> (0, 4); `5 to 9 years` -> (5, 9); `85 years and over` -> (85, max)."""
    if m := re.fullmatch(r"Under (\d+) years", label):
        return 0, int(m[1]) - 1
    if m := re.fullmatch(r"(\d+) to (\d+) years", label):
        return int(m[1]), int(m[2])
    if m := re.fullmatch(r"(\d+) years and over", label):
        return int(m[1]), max_age
    raise ConfigError(f"{MARGINALS_FILE}: age band {label!r} is not understood; fix the label.")


def build_age_groups(bands: Marginal, over: dict[int, float], max_age: int) -> AgeGroups:
    """Split the DP05 bands at every `N years and over` count into exact groups."""
    bounds = [band_bounds(c, max_age) for c in bands.categories]
    at_least = {lo: bands.estimates[i:].sum() for i, (lo, _) in enumerate(bounds)}
    at_least.update(over)
    cuts = sorted(at_least)
    lo = np.array(cuts)
    hi = np.array([*(c - 1 for c in cuts[1:]), max_age])
    counts = np.array([at_least[c] - at_least.get(n, 0.0) for c, n in zip(cuts, [*cuts[1:], -1])])
    weights = np.zeros(max_age + 1)
    for g in range(len(lo)):
        weights[lo[g] : hi[g] + 1] = counts[g] / (hi[g] - lo[g] + 1)
    top_lo, top_hi = bounds[-1]
    prev_lo, prev_hi = bounds[-2]
    ratio = bands.estimates[-1] / (bands.estimates[-2] + bands.estimates[-1])
    q = ratio ** (1.0 / (prev_hi - prev_lo + 1))
    shape = q ** np.arange(top_hi - top_lo + 1)
    weights[top_lo : top_hi + 1] = bands.estimates[-1] * shape / shape.sum()
    return AgeGroups(lo, hi, counts, weights)


def age_groups(rules: Rules) -> AgeGroups:
    marg = read_marginals()
    profile = read_profile(AGE_OVER_VARIABLES)
    over = {}
    for var in AGE_OVER_VARIABLES:
        label = _profile_label(var)
        over[int(re.search(r"(\d+) years and over", label)[1])] = profile[var]
    return build_age_groups(marg["age_band"], over, rules.max_age)


@cache
def _profile_labels() -> dict[str, str]:
    with open(CENSUS_DIR / PROFILE_FILE, newline="", encoding="utf-8") as fh:
        return {r["variable"]: r["label"] for r in csv.DictReader(fh)}


def _profile_label(variable: str) -> str:
    return _profile_labels()[variable]


def bracket_bounds(label: str) -> tuple[int, int | None]:
    """`Less than $10,000` -> (0, 9999); `$10,000 to $14,999` -> (10000, 14999);
    `$200,000 or more` -> (200000, None)."""
    nums = [int(x.replace(",", "")) for x in re.findall(r"\$([\d,]+)", label)]
    if label.startswith("Less than") and len(nums) == 1:
        return 0, nums[0] - 1
    if "or more" in label and len(nums) == 1:
        return nums[0], None
    if len(nums) == 2:
        return nums[0], nums[1]
    raise ConfigError(f"{MARGINALS_FILE}: income bracket {label!r} is not understood.")


def income_model(income: Marginal, mean_income: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Bracket lower/upper bounds (upper of the open top = -1) and the Pareto shape on top."""
    bounds = [bracket_bounds(c) for c in income.categories]
    lo = np.array([b[0] for b in bounds], dtype=np.int64)
    hi = np.array([-1 if b[1] is None else b[1] for b in bounds], dtype=np.int64)
    shares = income.shares
    closed = hi >= 0
    closed_mean = ((lo + hi + 1) / 2.0 * shares)[closed].sum()
    top = ~closed
    top_mean = (mean_income - closed_mean) / shares[top].sum()
    x_min = float(lo[top][0])
    if top_mean <= x_min:
        raise ConfigError("ACS mean household income is below the top bracket's floor.")
    return lo, hi, top_mean / (top_mean - x_min)


def read_states(path: Path = CENSUS_DIR / STATES_FILE) -> tuple[tuple[str, ...], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return tuple(r["state"] for r in rows), np.array([float(r["pop_2023"]) for r in rows])


def read_occupations(rules: Rules, path: Path = CENSUS_DIR / OCCUPATIONS_FILE) -> Occupations:
    """Detailed OEWS occupations with employment > 0, in the five ACS groups."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["level"] != "detailed" or not r["employment"]:
                continue
            major = int(r["soc_code"][:2])
            group = next(
                (i for i, (a, b) in enumerate(ACS_OCCUPATION_SOC_RANGES) if a <= major <= b), None
            )
            if group is None or float(r["employment"]) <= 0:
                continue
            req = rules.requirement_for(r["soc_code"])
            rank = rules.education_rank(req.min_education) if req else -1
            min_age = max(req.min_age if req else 0, rules.occupation_default_min_age)
            rows.append(
                (r["soc_code"], r["occupation"], group, float(r["employment"]), rank, min_age)
            )
    cols = list(zip(*rows))
    return Occupations(
        np.array(cols[0], dtype=object),
        np.array(cols[1], dtype=object),
        np.array(cols[2], dtype=np.int64),
        np.array(cols[3]),
        np.array(cols[4], dtype=np.int64),
        np.array(cols[5], dtype=np.int64),
    )


def read_sample_2012(path: Path = CENSUS_DIR / SAMPLE_2012_FILE) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
