"""Census-consistent demographics for seed personas, sampled conditionally on their text.

A seed persona keeps what its file columns and its text state (`seed_text.Stated`,
read by `seed_text.parse_seed_text`); every other demographic is one draw from the
fitted census joint (`census_fit`) restricted to the cells that agree with what is stated:
- age: the stated single year or range, plus the floors the statement implies (rules.toml:
  married from 15, work from 16, income from 18, "Retired" from 62, an occupation's minimum
  age); other dimensions: one-hot masks on the joint for the stated sex, race/ethnicity,
  education levels, marital statuses, work status / occupation group and income bracket;
- state: the stated state, else PEP 2023 shares; occupation: the stated OEWS occupation,
  else one drawn like a census persona's; name: census/SSA names (`names`), unique in the
  file, unless the file gives one.
So a seed persona is distributed like a census person who says the same things, the
consistency rules hold, and the row names the census vintage and tables like census rows.

Decisions:
- Each seed persona draws from its own generator (run seed + persona id), so adding a
  line to a seed file never changes the other personas.
- A statement no census person can make (age 12 and married, a retiree of 30) is not
  repaired: the row gets a reason (`seeds.load_seed_personas` raises or skips it).
"""

from __future__ import annotations

from dataclasses import astuple
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from personafoundry import census_tables as ct
from personafoundry.census import build_table, conditioned_model, draw_skeletons
from personafoundry.census_fit import (
    DIMS,
    EDU,
    INC,
    MAR,
    RACE,
    SEX,
    WORK,
    CensusModel,
    fit_census_model,
)
from personafoundry.config import PersonasConfig
from personafoundry.errors import ConfigError
from personafoundry.ids import stable_hash
from personafoundry.names import sample_names
from personafoundry.persona_fill import NAME_TRIES
from personafoundry.rules import Rules, load_rules, rule_violations
from personafoundry.seed_text import Stated

Conditioned = tuple[tuple[np.ndarray, np.ndarray, int, int], np.ndarray, int]


@cache
def soc_by_title() -> dict[str, str]:
    """Lower-case OEWS detailed title -> SOC code (to resolve stated job titles)."""
    occ = fit_census_model().occupations
    return {str(t).lower(): str(c) for t, c in zip(occ.title, occ.soc_code)}


def _index_mask(labels: tuple[str, ...], allowed: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.isin(np.array(labels, dtype=object), list(allowed))


def _work_mask(model: CensusModel, rules: Rules, st: Stated, occ: int) -> tuple[Any, int, int]:
    """(mask over the work dim or None, age floor, age ceiling) for the stated work."""
    labels = model.labels["work"]
    if occ >= 0:
        mask = np.zeros(len(labels), bool)
        mask[1 + model.occupations.group[occ]] = True
        return mask, int(model.occupations.min_age[occ]), rules.max_age
    status = st.employment_status
    if status is None:
        return None, 0, rules.max_age
    if status == rules.employed_label:
        return (
            np.isin(np.arange(len(labels)), range(1, 6)),
            rules.employment_null_below,
            rules.max_age,
        )
    if status == rules.retired_label:
        return _index_mask(labels, [rules.nilf_label]), rules.retired_from_age, rules.max_age
    floor = rules.employment_min_age.get(status, rules.employment_null_below)
    ceiling = rules.retired_from_age - 1 if status == rules.nilf_label else rules.max_age
    return _index_mask(labels, [status]), floor, ceiling


def _education_mask(model: CensusModel, rules: Rules, st: Stated, occ: int):
    """(mask over the education dim or None, age floor, age ceiling)."""
    labels = model.labels["edu"]
    mask, lo, hi = None, 0, rules.max_age
    if st.education:
        children = [c for c in rules.child_labels if c[2] in st.education]
        adult = _index_mask(labels, st.education)
        if adult.any():
            mask, lo = adult, rules.education_adult_from
        elif children:
            mask = np.arange(len(labels)) == 0
            lo, hi = min(c[0] for c in children), max(c[1] for c in children)
        else:
            mask = np.zeros(len(labels), bool)
    if occ >= 0:
        needs = np.arange(len(labels)) >= model.occupations.min_edu_rank[occ] + 1
        mask = needs if mask is None else mask & needs
    return mask, lo, hi


def _income_mask(model: CensusModel, rules: Rules, st: Stated):
    labels = model.labels["inc"]
    if st.household_income_bracket:
        return _index_mask(labels, [st.household_income_bracket])
    if st.income_min is not None:
        hi = np.concatenate([[-2], model.income_hi])
        open_top = (hi == -1) & (np.arange(len(labels)) > 0)
        return open_top | (hi >= st.income_min)
    return None


def condition_on(model: CensusModel, rules: Rules, st: Stated) -> Conditioned | str:
    """The joint restricted to what `st` states, or why no census persona fits it."""
    occ = -1
    if st.soc_code:
        hits = np.flatnonzero(model.occupations.soc_code == st.soc_code)
        if not len(hits):
            return f"SOC code {st.soc_code} is not a detailed BLS OEWS occupation"
        occ = int(hits[0])
    masks: dict[int, np.ndarray | None] = {
        SEX: _index_mask(model.labels["sex"], [st.sex]) if st.sex else None,
        RACE: _index_mask(model.labels["race"], [st.race_ethnicity]) if st.race_ethnicity else None,
        MAR: _index_mask(model.labels["mar"], st.marital_status) if st.marital_status else None,
        INC: _income_mask(model, rules, st),
    }
    masks[WORK], work_lo, work_hi = _work_mask(model, rules, st, occ)
    masks[EDU], edu_lo, edu_hi = _education_mask(model, rules, st, occ)
    past = np.flatnonzero(model.occupations.soc_code == st.past_soc_code)
    if st.past_soc_code and len(past):  # a former job still needed its degree and age
        needs = np.arange(len(model.labels["edu"])) >= model.occupations.min_edu_rank[past[0]] + 1
        masks[EDU] = needs if masks[EDU] is None else masks[EDU] & needs
        edu_lo = max(edu_lo, int(model.occupations.min_age[past[0]]))
    floors = [st.age_min, work_lo, edu_lo]
    floors += [rules.marital_null_below] if st.marital_status else []
    floors += [rules.income_null_below] if masks[INC] is not None else []
    amin = max(floors)
    amax = min(rules.max_age, work_hi, edu_hi, st.age_max if st.age_max is not None else 999)
    if amin > amax:
        return f"the stated facts need an age of {amin}-{amax}, which no one has"
    cfg = PersonasConfig(census_states=[st.state] if st.state else [], census_age_min=amin,
                         census_age_max=amax)  # fmt: skip
    try:
        joint, state_p, amin, amax = conditioned_model(model, cfg, rules)
    except ConfigError as err:
        return str(err).removeprefix("personas: ")
    for dim, mask in masks.items():
        if mask is not None:
            shape = [1] * joint.ndim
            shape[dim] = len(mask)
            joint = joint * mask.reshape(shape)
    if joint.sum() <= 0:
        stated = ", ".join(
            DIMS[d] for d, m in masks.items() if m is not None
        )  # the masked dims, for the message
        return f"no census person has this combination of age {amin}-{amax} and {stated}"
    joint = joint / joint.sum()
    return (joint, state_p, amin, amax), np.cumsum(joint.ravel()), occ


def complete_seed_rows(
    rows: list[dict[str, Any]], stated: list[Stated], *, rng_seed: int
) -> list[dict[str, Any] | str]:
    """Seed rows with every demographic column filled, or a reason per impossible row.

    Input: seed rows (`persona_id`, `seed_text`, stated columns) and what each states.
    Output rows follow `schemas/personas.py` with `source = "seed"`.
    """
    model, rules = fit_census_model(), load_rules()
    cache: dict[tuple, Conditioned | str] = {}
    taken = {r["name"] for r in rows if r.get("name")}
    out: list[dict[str, Any] | str] = []
    drawn: list[tuple[int, dict[str, Any]]] = []
    for row, st in zip(rows, stated):
        key = astuple(st)[:-1]  # every field but the cue list
        if key not in cache:
            cache[key] = condition_on(model, rules, st)
        cond = cache[key]
        if isinstance(cond, str):
            out.append(f"no census-consistent demographics: {cond}")
            continue
        drawn.append((len(out), _draw_one(model, rules, row, cond, rng_seed, taken)))
        out.append("")
    if drawn:  # one table for all drawn rows (slot i of `out` is row i): ~3 ms a row saved
        v = {k: _concat([d[k] for _, d in drawn]) for k in drawn[0][1] if k != "n"}
        ids = pa.array([rows[slot]["persona_id"] for slot, _ in drawn], pa.string())
        table = build_table(model, rules, ids, {**v, "n": len(drawn)})
        for (slot, _), sampled in zip(drawn, table.to_pylist()):
            out[slot] = _keep_stated(sampled, rows[slot], stated[slot])
    return _enforce_rules(out, rules)


def _concat(parts: list[Any]) -> Any:
    return pa.concat_arrays(parts) if isinstance(parts[0], pa.Array) else np.concatenate(parts)


def _draw_one(
    model: CensusModel, rules: Rules, row: dict[str, Any], cond: Conditioned,
    rng_seed: int, taken: set[str],
) -> dict[str, Any]:  # fmt: skip
    """One persona's index arrays, from its own generator (run seed + persona id)."""
    conditioned, cdf, occ = cond
    rng = np.random.default_rng(int(stable_hash([rng_seed, row["persona_id"], "demographics"]), 16))
    cell = np.searchsorted(cdf, rng.random(1) * cdf[-1], side="right").clip(0, cdf.size - 1)
    v = draw_skeletons(model, rules, conditioned, 1, rng, np.array([occ]), cell)
    if not row.get("name"):
        for _ in range(NAME_TRIES):
            if v["names"][0].as_py() not in taken:
                break
            sex = np.array(model.labels["sex"], dtype=object)[v["sex"]]
            v["names"] = sample_names(
                sex, v["age"], v["race"], model.labels["race"], rules.reference_year, rng
            )
        taken.add(v["names"][0].as_py())
    return v


def _keep_stated(sampled: dict[str, Any], row: dict[str, Any], st: Stated) -> dict[str, Any]:
    """The drawn row with the seed's own name, job title and income amount put back."""
    kept = {k: row[k] for k in ("name", "occupation", "household_income") if row.get(k)}
    if st.household_income is not None:
        kept["household_income"] = st.household_income
    if kept.get("household_income") is not None:
        lo, hi = _bracket(sampled["household_income_bracket"])
        kept["household_income"] = int(np.clip(kept["household_income"], lo, hi))
    return {**sampled, "source": "seed", "seed_text": row["seed_text"], **kept}


def _bracket(label: str) -> tuple[int, int]:
    lo, hi = ct.bracket_bounds(label)
    return lo, hi if hi is not None else 10**12


def _enforce_rules(out: list[dict[str, Any] | str], rules: Rules) -> list[dict[str, Any] | str]:
    """Rows breaking a rules.toml rule (only possible through stated columns) get a reason."""
    from schemas.personas import SCHEMA

    done = [(i, r) for i, r in enumerate(out) if isinstance(r, dict)]
    if not done:
        return out
    table = pa.Table.from_pylist([r for _, r in done], schema=SCHEMA.arrow_schema())
    if not sum(rule_violations(table, rules).values()):
        return out
    for k, (i, _) in enumerate(done):
        broken = [name for name, n in rule_violations(table.slice(k, 1), rules).items() if n]
        if broken:
            out[i] = f"the stated demographics break rule(s) {broken} of seeds/census/rules.toml"
    return out
