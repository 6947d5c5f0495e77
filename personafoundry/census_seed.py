"""Seed factors and IPF constraints for `census_fit`: the 2012 associations and 2023 targets.

Mapping of 2023 categories onto the 2012 sample's coarse codes (an approximation, recorded
in SOURCES.md): race white/black/asian = the non-Hispanic White/Black/Asian groups, every
other group (Hispanic included) = "other"; education "hs or lower" = up to high school
graduate, "grad" = graduate or professional degree, "college" = the levels between;
married = "Now married, except separated"; employed = any occupation group or Armed
Forces; personal income is binned with the 2023 household brackets, two brackets per code.
"""

from __future__ import annotations

import numpy as np

from personafoundry import census_tables as ct
from personafoundry.census_fit import (
    AGE,
    EDU,
    INC,
    MAR,
    RACE,
    SEX,
    WORK,
    Constraint,
)
from personafoundry.census_fit import (
    DIMS as DIM_NAMES,
)
from personafoundry.rules import Rules

# (dim a, dim b) pairs whose 2012 two-way tables are fitted in stage 1.
# The 2012 income is personal, not household, income, so income pairs are fitted as
# P(income | x) over people with positive income only, and only for race and education:
# with age, sex, marital or work status it would make students, retirees and every
# non-earner poor (checked: 18-19 year-olds came out 63% under $15,000).
PAIRS = (
    (AGE, RACE),
    (AGE, EDU),
    (AGE, MAR),
    (AGE, WORK),
    (SEX, EDU),
    (SEX, WORK),
    (RACE, EDU),
    (RACE, MAR),
    (RACE, WORK),
    (RACE, INC),
    (EDU, MAR),
    (EDU, WORK),
    (EDU, INC),
    (MAR, WORK),
)
# Lower edges of the age classes used for 2012 tables: the DP05 bands with 55-64 and 75+
# merged, because 2,000 people cannot support finer groups.
AGE_CLASSES_2012 = np.array([0, 5, 10, 15, 20, 25, 35, 45, 55, 65, 75])
RACE_2012 = (
    ("White alone", "white"),
    ("Black or African American alone", "black"),
    ("Asian alone", "asian"),
)
EVER_MARRIED_LINEAR = ("Separated", "Divorced")
WIDOWED = ("Widowed",)
MIN_ATTRITION = 0.002  # floor so young widowhood stays possible (IPF rescales it anyway)
MARRIED = "Now married, except separated"
SMOOTHING = 1.0  # pseudo-observations per cell, spread by independence, in 2012 two-way tables


def seed_factors(
    rules: Rules,
    ages: ct.AgeGroups,
    occ: ct.Occupations,
    labels: dict,
    shape: tuple[int, ...],
    edu_prior: np.ndarray,
) -> np.ndarray:
    """Prior factors the 2012 sample cannot give.

    Occupation group | education follows the OEWS jobs open to that education (children
    16-17, index 0, only get jobs without a requirement); ever-married states grow with
    adult years; education levels start from the 2023 25+ shares, so that within a coarse
    2012 code (e.g. "hs or lower") the 18-24 split follows the 25+ split. Widowhood follows
    adult years x cohort attrition (`_cohort_attrition`): time married x spouse mortality.
    """
    factor = np.ones(shape)
    factor[:, :, :, 1:, :, :, :] *= (edu_prior / edu_prior.sum())[:, None, None, None]
    total = np.array([occ.employment[occ.group == g].sum() for g in range(5)])
    for e in range(shape[EDU]):
        open_jobs = np.array(
            [occ.employment[(occ.group == g) & (occ.min_edu_rank <= e - 1)].sum() for g in range(5)]
        )
        factor[:, :, :, e, :, 1:6, :] *= (open_jobs / total)[:, None]
    years = np.maximum((ages.lo + ages.hi) / 2.0 - rules.education_adult_from, 0.0) + 0.5
    attrition = _cohort_attrition(ages, rules.education_adult_from)
    for m, label in enumerate(labels["mar"]):
        weight = (
            years
            if label in EVER_MARRIED_LINEAR
            else years * attrition
            if label in WIDOWED
            else 1.0
        )
        factor[:, :, :, :, m, :, :] *= np.broadcast_to(weight, years.shape)[
            :, None, None, None, None, None
        ]
    return factor


def _cohort_attrition(ages: ct.AgeGroups, adult_from: int) -> np.ndarray:
    """Share of each adult cohort already gone, from the 2023 age profile itself.

    1 - (people per single year in the group) / (max per year in any younger adult group):
    a data-derived stand-in for "the spouse may have died", ~0 under 45 and rising steeply
    after 65, used as the widowhood seed weight.
    """
    per_year = ages.counts / (ages.hi - ages.lo + 1)
    adult = ages.lo >= adult_from
    running = np.maximum.accumulate(np.where(adult, per_year, 0.0))
    gone = np.where(adult, 1.0 - per_year / np.maximum(running, 1e-12), 0.0)
    return np.maximum(np.maximum.accumulate(gone), MIN_ATTRITION)


def _codes_2012(
    rows: list[dict[str, str]], ages: ct.AgeGroups, rules: Rules, inc_bounds: np.ndarray
) -> dict[int, np.ndarray]:
    """Per dim, each 2012 person's coarse code (-1 = missing or outside the universe)."""
    age = np.array([int(float(r["age"])) for r in rows])
    group = np.searchsorted(AGE_CLASSES_2012, age, side="right") - 1

    def lookup(col: str, values: tuple[str, ...], min_age: int = 0) -> np.ndarray:
        code = np.array([values.index(r[col]) if r[col] in values else -1 for r in rows])
        return np.where(age >= min_age, code, -1)

    income = np.array([float(r["income"]) if r["income"] else np.nan for r in rows])
    inc = np.searchsorted(inc_bounds, np.nan_to_num(income, nan=-1.0), side="right") - 1
    inc = np.where(np.isnan(income) | (income <= 0) | (age < rules.income_null_below), -1, inc // 2)
    return {
        AGE: group,
        SEX: lookup("gender", ("male", "female")),
        RACE: lookup("race", ("white", "black", "asian", "other")),
        EDU: lookup("edu", ("hs or lower", "college", "grad"), rules.education_adult_from),
        MAR: lookup("married", ("no", "yes"), rules.marital_null_below),
        WORK: lookup(
            "employment",
            ("employed", "unemployed", "not in labor force"),
            rules.employment_null_below,
        ),
        INC: inc,
    }


def _maps_2012(labels: dict, rules: Rules, ages: ct.AgeGroups) -> dict[int, np.ndarray]:
    """Per dim, fine category index -> 2012 coarse code (-1 = outside the universe)."""
    race = [
        next((i for i, (key, _) in enumerate(RACE_2012) if key in lab), 3) for lab in labels["race"]
    ]
    order = rules.education_order
    some_college = order.index("Some college, no degree")
    edu = [-1] + [
        0 if i < some_college else 2 if i == len(order) - 1 else 1 for i in range(len(order))
    ]
    mar = [-1] + [1 if lab == MARRIED else 0 for lab in labels["mar"][1:]]
    unemployed, armed, nilf = 6, 7, 8
    work = [-1, 0, 0, 0, 0, 0, 1, 0, 2]
    assert labels["work"][unemployed] == "Unemployed" and labels["work"][armed] == "Armed Forces"
    assert labels["work"][nilf] == "Not in labor force"
    inc = [-1] + [b // 2 for b in range(len(labels["inc"]) - 1)]
    age = np.searchsorted(AGE_CLASSES_2012, ages.lo, side="right") - 1
    return {
        AGE: age,
        SEX: np.arange(2),
        RACE: np.array(race),
        EDU: np.array(edu),
        MAR: np.array(mar),
        WORK: np.array(work),
        INC: np.array(inc),
    }


def _coarse_support(
    seed: np.ndarray, dims: tuple[int, int], maps: tuple, size: tuple
) -> np.ndarray:
    other = tuple(d for d in range(seed.ndim) if d not in dims)
    fine = seed.sum(axis=other) > 0
    out = np.zeros(size, dtype=bool)
    for i, j in zip(*np.nonzero(fine)):
        if maps[0][i] >= 0 and maps[1][j] >= 0:
            out[maps[0][i], maps[1][j]] = True
    return out


def seed_constraints(
    seed: np.ndarray, ages: ct.AgeGroups, labels: dict, rules: Rules, inc_bounds: np.ndarray
) -> list[Constraint]:
    """Stage 1: the smoothed 2012 two-way tables, restricted to possible cells."""
    codes = _codes_2012(ct.read_sample_2012(), ages, rules, inc_bounds)
    maps = _maps_2012(labels, rules, ages)
    out = []
    for a, b in PAIRS:
        size = (int(maps[a].max()) + 1, int(maps[b].max()) + 1)
        ok = (codes[a] >= 0) & (codes[b] >= 0)
        counts = np.zeros(size)
        np.add.at(counts, (codes[a][ok], codes[b][ok]), 1.0)
        n = counts.sum()
        indep = np.outer(counts.sum(1), counts.sum(0)) / n
        table = (counts + SMOOTHING * counts.size * indep / n) * _coarse_support(
            seed, (a, b), (maps[a], maps[b]), size
        )
        name = f"acs2012:{DIM_NAMES[a]}x{DIM_NAMES[b]}"
        out.append(Constraint(name, (a, b), (maps[a], maps[b]), table / table.sum(), b == INC))
    return out


def target_constraints(
    marg: dict[str, ct.Marginal], ages: ct.AgeGroups, labels: dict
) -> list[Constraint]:
    """Stage 2: the ACS 2023 targets, each as shares of its universe."""
    n_age = len(ages.lo)
    ident = np.arange
    age3 = np.where(ages.lo >= 65, 2, np.where(ages.lo >= 18, 1, 0))
    sex_total, sex18, sex65 = (marg[k].estimates for k in ("sex", "sex_18plus", "sex_65plus"))
    sex_by_age3 = np.stack([sex_total - sex18, sex18 - sex65, sex65])
    edu25 = marg["education_25plus"].estimates
    mar = np.stack(
        [
            marg["marital_status_male_15plus"].estimates,
            marg["marital_status_female_15plus"].estimates,
        ]
    )
    emp = marg["employment_status_16plus"].estimates
    work = np.concatenate([marg["occupation_group"].estimates, emp[1:]])
    inc = marg["household_income"].estimates
    minus1 = lambda k: np.arange(k) - 1

    def c(name: str, dims: tuple, maps: tuple, target: np.ndarray) -> Constraint:
        return Constraint(name, dims, maps, target / target.sum())

    return [
        c("age_group", (AGE,), (ident(n_age),), ages.counts),
        c("sex_by_age", (AGE, SEX), (age3, ident(2)), sex_by_age3),
        c(
            "race_ethnicity",
            (RACE,),
            (ident(len(labels["race"])),),
            marg["race_ethnicity"].estimates,
        ),
        c(
            "education_25plus",
            (AGE, EDU),
            (np.where(ages.lo >= 25, 0, -1), minus1(len(edu25) + 1)),
            edu25[None, :],
        ),
        c("marital_by_sex_15plus", (SEX, MAR), (ident(2), minus1(mar.shape[1] + 1)), mar),
        c("employment_16plus", (WORK,), (minus1(len(work) + 1),), work),
        c("household_income_18plus", (INC,), (minus1(len(inc) + 1),), inc),
    ]
