"""Fit one joint distribution of the census attributes that matches every ACS 2023 marginal.

The joint is a dense array over 7 dimensions (`DIMS`): age group, sex, race/ethnicity,
education, marital status, work (not in universe / 5 ACS occupation groups / unemployed /
Armed Forces / not in labor force) and household income bracket. Index 0 of education,
marital, work and income means "outside the ACS universe" (too young), and rules.toml
decides which cells are structurally impossible (zero).

Algorithm (iterative proportional fitting, two stages, plain numpy):
1. Seed = structural zeros x two rule/data-derived factors: occupation group given
   education follows the OEWS jobs open to that education (rules.toml requirements), and
   ever-married states follow an exposure assumption (separated/divorced weight grows
   linearly with adult years; widowed with adult years x cohort attrition read off the 2023
   age profile), because the 2012 sample only says married yes/no.
2. Stage 1 fits the seed to the two-way tables of the 2012 ACS person sample (2,000 people,
   smoothed toward independence, categories mapped to the sample's coarse codes): this
   fits the all-two-way log-linear model, i.e. the realistic correlations (age with
   education, marriage, work and income; education with work and income; race with each).
3. Stage 2 fits that to the 2023 targets (age groups, sex by age, race, education 25+,
   marital status by sex 15+, employment status and occupation group 16+, household income
   18+). IPF keeps the stage-1 odds ratios while matching every 2023 marginal exactly.

Why our own IPF rather than `ipfn`/`humanleague`: the targets live on sub-universes
(education only for 25+, income for 18+) and on coarsened categories (2012 codes); a
constraint here is "dims + fine-to-coarse map per dim", which those libraries do not
express, and the whole fit is ~40 lines of numpy.

The fitted joint is cached on disk (`cache_home()/census/`, keyed by a hash of the census
files and this code) because the fit costs ~7 s CPU per process; see `build_census_model`.

Known limitation: the 2012 sample has personal, not household, income; it stands in for
the association of household income with the other attributes.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from personafoundry import census_tables as ct
from personafoundry.paths import cache_home
from personafoundry.rules import Rules, load_rules

log = logging.getLogger(__name__)

DIMS = ("age", "sex", "race", "edu", "mar", "work", "inc")
AGE, SEX, RACE, EDU, MAR, WORK, INC = range(7)
MAX_ITER = 500
SEED_ITER = 60  # stage 1 need not converge exactly: 2012 tables are noisy and partly infeasible
TOLERANCE = 1e-7  # max |fitted - target| share: far below sampling noise


@dataclass(frozen=True)
class Constraint:
    """Target proportions over `dims` after mapping fine categories to coarse codes (-1 = out)."""

    name: str
    dims: tuple[int, ...]
    maps: tuple[np.ndarray, ...]
    target: np.ndarray  # proportions over the coarse codes, sums to 1
    conditional: bool = False  # fit P(last dim | other dims) only, keep the others' marginal


@dataclass(frozen=True)
class CensusModel:
    """The fitted joint plus everything the sampler needs to turn a cell into a persona."""

    joint: np.ndarray
    labels: dict[str, tuple[str, ...]]  # per dim, index 0 of edu/mar/work/inc = not in universe
    ages: ct.AgeGroups
    occupations: ct.Occupations
    states: tuple[str, ...]
    state_pop: np.ndarray
    income_lo: np.ndarray
    income_hi: np.ndarray
    pareto_alpha: float
    edu_min_age: np.ndarray  # per edu index (0 = child: 0)
    work_min_age: np.ndarray  # per work index
    iterations: int
    max_error: float


def ipf(
    joint: np.ndarray,
    constraints: list[Constraint],
    max_iter: int = MAX_ITER,
    tol: float = TOLERANCE,
) -> tuple[np.ndarray, int, float]:
    """Rescale `joint` until every constraint's coarse marginal matches its target share."""
    err = np.inf
    for it in range(1, max_iter + 1):
        err = 0.0
        for c in constraints:
            other = tuple(d for d in range(joint.ndim) if d not in c.dims)
            fine = joint.sum(axis=other)
            coarse = fine
            for k, m in enumerate(c.maps):
                onehot = (m[:, None] == np.arange(c.target.shape[k])[None, :]).astype(float)
                coarse = np.moveaxis(np.tensordot(coarse, onehot, axes=([k], [0])), -1, k)
            total = coarse.sum()
            if c.conditional:
                rows = c.target.sum(axis=-1, keepdims=True)
                cond = np.divide(c.target, rows, out=np.zeros_like(c.target), where=rows > 0)
                want = cond * coarse.sum(axis=-1, keepdims=True)
            else:
                want = c.target * total
            err = max(err, float(np.abs(coarse - want).max() / total))
            ratio = np.ones(tuple(s + 1 for s in c.target.shape))
            core = np.divide(want, coarse, out=np.zeros_like(want), where=coarse > 0)
            ratio[tuple(slice(0, s) for s in c.target.shape)] = core
            pad = [np.where(m < 0, ratio.shape[k] - 1, m) for k, m in enumerate(c.maps)]
            fine_ratio = ratio[np.ix_(*pad)]
            shape = [1] * joint.ndim
            for k, d in enumerate(c.dims):
                shape[d] = fine_ratio.shape[k]
            joint *= fine_ratio.reshape(shape)
        if err < tol:
            return joint, it, err
    return joint, max_iter, err


def _structural(rules: Rules, ages: ct.AgeGroups, occ: ct.Occupations, shape: tuple) -> np.ndarray:
    """1 where a cell is possible under rules.toml, else 0 (age bounds use the group's top)."""
    allowed = np.ones(shape)
    hi, lo = ages.hi, ages.lo

    def set2(dim: int, ok: np.ndarray) -> None:  # ok: [age group, category]
        s = [1] * len(shape)
        s[AGE], s[dim] = ok.shape
        allowed[...] *= ok.reshape(s)

    adult = lo >= rules.education_adult_from
    edu_min = edu_min_ages(rules)
    set2(
        EDU,
        np.where(adult[:, None], (edu_min[None, :] <= hi[:, None]), False)
        | (~adult[:, None] & (np.arange(shape[EDU]) == 0)[None, :]),
    )
    set2(EDU, (np.arange(shape[EDU])[None, :] > 0) | ~adult[:, None])
    for dim, below in ((MAR, rules.marital_null_below), (INC, rules.income_null_below)):
        inside = lo >= below
        set2(dim, (np.arange(shape[dim])[None, :] > 0) == inside[:, None])
    inside = lo >= rules.employment_null_below
    set2(WORK, (np.arange(shape[WORK])[None, :] > 0) == inside[:, None])
    set2(WORK, work_min_ages(rules, shape[WORK])[None, :] <= hi[:, None])
    # occupation groups need at least one occupation open to (education, age group top)
    for g in range(5):
        in_g = occ.group == g
        ok = np.zeros((len(lo), shape[EDU]))
        for e in range(shape[EDU]):  # e - 1 = rank; children (e = 0) get open jobs only
            ok[:, e] = [np.any(in_g & (occ.min_edu_rank <= e - 1) & (occ.min_age <= h)) for h in hi]
        allowed[:, :, :, :, :, 1 + g, :] *= ok[:, None, None, :, None, None]
    return allowed


def edu_min_ages(rules: Rules) -> np.ndarray:
    return np.array(
        [0]
        + [
            rules.education_min_age.get(e, rules.education_adult_from)
            for e in rules.education_order
        ]
    )


def work_min_ages(rules: Rules, n: int) -> np.ndarray:
    labels = work_labels()
    return np.array(
        [0]
        + [rules.employment_min_age.get(lab, rules.employment_null_below) for lab in labels[1:n]]
    )


def work_labels() -> tuple[str, ...]:
    """Work dimension labels: 0 = under 16, then the 5 occupation groups, then the rest."""
    m = ct.read_marginals()
    return ("", *m["occupation_group"].categories, *m["employment_status_16plus"].categories[1:])


@lru_cache(maxsize=1)
def fit_census_model() -> CensusModel:
    """The fitted joint for `seeds/census/`, once per process and from the disk cache."""
    return build_census_model(disk_cache=True)


def cache_key() -> str:
    """SHA-256 over the joint's inputs (the census CSVs, rules.toml) and the fitting code."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    code = [here / f for f in ("census_fit.py", "census_seed.py", "census_tables.py", "rules.py")]
    inputs = sorted(ct.CENSUS_DIR.glob("*.csv")) + [ct.CENSUS_DIR / "rules.toml"]
    for path in inputs + code:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


def _cache_path() -> Path:
    return cache_home() / "census" / f"joint-{cache_key()}.npz"


def _load_cached(path: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, int, float] | None:
    try:
        with np.load(path) as data:
            joint = data["joint"]
            if joint.shape == shape:
                return joint, int(data["iterations"]), float(data["max_error"])
    except (OSError, KeyError, ValueError):
        log.debug("census joint cache %s unreadable; refitting", path)
    return None


def _save_cached(path: Path, joint: np.ndarray, iterations: int, err: float) -> None:
    """Atomic write (temp file + rename); a read-only cache home only costs the refit."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, joint=joint, iterations=iterations, max_error=err)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("census joint cache %s not written (%s)", path, exc)


def build_census_model(*, disk_cache: bool = True) -> CensusModel:
    """Fit the joint distribution for `seeds/census/` (no randomness).

    The fit costs ~7 s CPU; with `disk_cache` the joint is stored under
    `cache_home()/census/`, keyed by `cache_key()`, and later processes load it (~0.1 s).
    """
    from personafoundry.census_seed import seed_constraints, seed_factors, target_constraints

    rules = load_rules()
    marg = ct.read_marginals()
    ages = ct.age_groups(rules)
    occ = ct.read_occupations(rules)
    labels = {
        "age": tuple(f"{a}-{b}" for a, b in zip(ages.lo, ages.hi)),
        "sex": marg["sex"].categories,
        "race": marg["race_ethnicity"].categories,
        "edu": ("", *rules.education_order),
        "mar": ("", *marg["marital_status_male_15plus"].categories),
        "work": work_labels(),
        "inc": ("", *marg["household_income"].categories),
    }
    shape = tuple(len(labels[d]) for d in DIMS)
    lo, hi, alpha = ct.income_model(
        marg["household_income"], ct.read_summary()["Mean household income (dollars)"]
    )
    cached = _load_cached(_cache_path(), shape) if disk_cache else None
    if cached is not None:
        joint, iterations, err = cached
    else:
        joint = _structural(rules, ages, occ, shape) * seed_factors(
            rules, ages, occ, labels, shape, marg["education_25plus"].estimates
        )
        joint /= joint.sum()
        seeds = seed_constraints(joint, ages, labels, rules, lo)
        joint, it1, _ = ipf(joint, seeds, SEED_ITER, 1e-7)
        joint, it2, err = ipf(joint, target_constraints(marg, ages, labels), MAX_ITER, TOLERANCE)
        if err > 1e-6:
            log.warning("census IPF stopped after %d iterations with max error %.2e", it2, err)
        log.info(
            "census joint fitted: %d cells, IPF %d+%d iterations, max error %.1e",
            joint.size, it1, it2, err,
        )  # fmt: skip
        joint, iterations = joint / joint.sum(), it1 + it2
        if disk_cache:
            _save_cached(_cache_path(), joint, iterations, err)
    states, pop = ct.read_states()
    return CensusModel(
        joint,
        labels,
        ages,
        occ,
        states,
        pop,
        lo,
        hi,
        alpha,
        edu_min_ages(rules),
        work_min_ages(rules, shape[WORK]),
        iterations,
        err,
    )
