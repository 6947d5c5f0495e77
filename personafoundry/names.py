"""Sample full names from real name tables: SSA first names, Census 2020 race shares, surnames.

First name: P(name | sex, birth decade) from SSA card applications (`ssa_babynames_by_decade`),
reweighted by the share of the name's bearers in the persona's race/Hispanic-origin group
(Census 2020 first-name table): P(name | sex, decade, race) ~ P_SSA(name | sex, decade) x
pct_race(name). Surname: P(surname | race) ~ count x pct_race (Census 2020 surnames).

Decisions:
- Birth year = `reference_year` (2023, rules.toml) - age; decades outside the SSA file are
  clamped to its first/last decade (the 2010 decade covers 2010-2017 births only).
- SSA names missing from the Census first-name table take the race shares of its
  "ALL OTHER NAMES" row.
- ACS race groups map to the Census name-file groups: Hispanic -> Hispanic; non-Hispanic
  White, Black, AIAN, Two or more -> the same group; Asian and NHPI -> API (the name files
  have one Asian/Pacific Islander group); "Some Other Race alone" has no group in the name
  files, so its names are not reweighted.
- Names are title-cased (`MCDONALD` -> `McDonald`); nothing else is changed or invented.
- Uniqueness within a release is `personafoundry.unique_names`' job (redraws repeats).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from personafoundry.paths import SEEDS_DIR

CENSUS_DIR = SEEDS_DIR / "census"
SSA_FILE = "ssa_babynames_by_decade.csv.gz"
FIRST_FILE = "census2020_first_names.csv.gz"
SURNAME_FILE = "census2020_surnames.csv.gz"
OTHER_NAMES = "ALL OTHER NAMES"
# (substring of the ACS race label, Census name-file column); first match wins.
RACE_COLUMNS = (
    ("Hispanic or Latino", "pcthispanic"),
    ("White alone", "pctwhite"),
    ("Black or African American alone", "pctblack"),
    ("American Indian and Alaska Native alone", "pctaian"),
    ("Asian alone", "pctapi"),
    ("Native Hawaiian and Other Pacific Islander alone", "pctapi"),
    ("Two or More Races", "pct2prace"),
)
PCT_COLUMNS = ("pcthispanic", "pctwhite", "pctblack", "pctaian", "pctapi", "pct2prace")


@dataclass(frozen=True)
class NameTables:
    """First names per (decade, sex) with race shares; surnames with counts and race shares."""

    decades: np.ndarray
    first: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray]]  # names, p, pct
    surnames: np.ndarray
    surname_counts: np.ndarray
    surname_pct: np.ndarray  # [n, len(PCT_COLUMNS)]


def title_case(name: str) -> str:
    """`MARY` -> `Mary`, `MCDONALD` -> `McDonald`, `SMITH-JONES` -> `Smith-Jones`."""
    out = name.title()
    if len(out) > 2 and out.startswith("Mc"):
        out = "Mc" + out[2:].capitalize()
    return out


@lru_cache(maxsize=1)
def load_name_tables() -> NameTables:
    """Read and join the three name files (once per process)."""
    ssa = pd.read_csv(CENSUS_DIR / SSA_FILE, keep_default_na=False)
    census = pd.read_csv(CENSUS_DIR / FIRST_FILE, keep_default_na=False, na_values=[""])
    other = census.loc[census["name"] == OTHER_NAMES, list(PCT_COLUMNS)].to_numpy(float)[0]
    pct_by_name = census.set_index("name")[list(PCT_COLUMNS)]
    first = {}
    for (decade, sex), grp in ssa.groupby(["decade", "sex"], sort=True):
        upper = grp["name"].str.upper()
        pct = pct_by_name.reindex(upper).to_numpy(float)
        pct = np.where(np.isnan(pct), other[None, :], pct)
        names = np.array([title_case(n) for n in grp["name"]], dtype=object)
        first[(int(decade), str(sex))] = (names, grp["n"].to_numpy(float), pct)
    sur = pd.read_csv(CENSUS_DIR / SURNAME_FILE, keep_default_na=False, na_values=[""])
    return NameTables(
        np.array(sorted({d for d, _ in first})),
        first,
        np.array([title_case(n) for n in sur["name"]], dtype=object),
        sur["count"].to_numpy(float),
        sur[list(PCT_COLUMNS)].fillna(0.0).to_numpy(float),
    )


@lru_cache(maxsize=1)
def name_arrays() -> tuple[dict[tuple[int, str], int], pa.Array, pa.Array]:
    """Every first name in one Arrow array (offset per (decade, sex)) and the surnames.

    Drawing indices and taking from these avoids building 1M Python strings per column.
    """
    tables = load_name_tables()
    offsets, chunks, pos = {}, [], 0
    for key in sorted(tables.first):
        offsets[key] = pos
        chunks.append(tables.first[key][0])
        pos += len(tables.first[key][0])
    firsts = pa.array(np.concatenate(chunks), pa.string())
    return offsets, firsts, pa.array(tables.surnames, pa.string())


def race_column(race_label: str) -> int | None:
    """Index into PCT_COLUMNS for an ACS race label, or None (no reweighting)."""
    for key, col in RACE_COLUMNS:
        if key in race_label:
            return PCT_COLUMNS.index(col)
    return None


def _draw(cdf: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.searchsorted(cdf, rng.random(k) * cdf[-1], side="right").clip(0, len(cdf) - 1)


@lru_cache(maxsize=4096)
def _first_cdf(decade: int, sex: str, col: int | None) -> np.ndarray:
    """Cumulative P(first name | sex, decade) x race share; cached (seed personas draw one
    name at a time, and the cumulative sum over ~30k names dominated that)."""
    _, p, pct = load_name_tables().first[(decade, sex)]
    return np.cumsum(p if col is None else p * pct[:, col])


@lru_cache(maxsize=16)
def _surname_cdf(col: int | None) -> np.ndarray:
    tables = load_name_tables()
    counts = tables.surname_counts
    return np.cumsum(counts if col is None else counts * tables.surname_pct[:, col])


def group_rows(key: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(key value, row indices) per distinct key, in increasing key order."""
    order = np.argsort(key, kind="stable")
    values, starts = np.unique(key[order], return_index=True)
    ends = [*starts[1:], len(key)]
    return [(int(v), order[a:b]) for v, a, b in zip(values, starts, ends)]


def draw_codes(
    sex: np.ndarray,
    age: np.ndarray,
    race: np.ndarray,
    race_labels: tuple[str, ...],
    reference_year: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(index into the first-name array, index into the surname array) per row.

    Vectorised per (decade, sex, name-file race group); deterministic for a given `rng` state.
    """
    tables = load_name_tables()
    n = len(sex)
    decade = np.clip((reference_year - age) // 10 * 10, tables.decades[0], tables.decades[-1])
    male = np.asarray(sex == "Male")
    cols = [race_column(lab) for lab in race_labels]
    group_of = np.array([len(PCT_COLUMNS) if c is None else c for c in cols], dtype=np.int64)
    col = group_of[np.asarray(race, dtype=np.int64)]  # 0..5, 6 = not reweighted
    offsets = name_arrays()[0]
    first = np.empty(n, dtype=np.int64)
    for k, rows in group_rows((decade.astype(np.int64) * 2 + male) * 8 + col):
        group, c = (k // 16, "M" if (k // 8) % 2 else "F"), k % 8
        cdf = _first_cdf(*group, None if c == len(PCT_COLUMNS) else int(c))
        first[rows] = offsets[group] + _draw(cdf, len(rows), rng)
    last = np.empty(n, dtype=np.int64)
    for c, rows in group_rows(col):
        last[rows] = _draw(_surname_cdf(None if c == len(PCT_COLUMNS) else c), len(rows), rng)
    return first, last


def join_names(first: np.ndarray, last: np.ndarray) -> pa.Array:
    _, firsts, surnames = name_arrays()
    return pc.binary_join_element_wise(firsts.take(first), surnames.take(last), " ")


def sample_names(
    sex: np.ndarray,
    age: np.ndarray,
    race: np.ndarray,
    race_labels: tuple[str, ...],
    reference_year: int,
    rng: np.random.Generator,
) -> pa.Array:
    """Full names ("First Last") given sex ("Male"/"Female"), age and race index (into
    `race_labels`); repeats allowed (`unique_names.sample_unique_names` redraws them)."""
    return join_names(*draw_codes(sex, age, race, race_labels, reference_year, rng))
