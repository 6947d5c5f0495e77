"""Calibration report: how closely census personas follow the census tables they claim.

For every attribute: target share, sampled share and total variation distance
(TVD = 1/2 sum |p - q|) within the ACS universe of that attribute (education 25+, income
18+, marital status by sex 15+, employment 16+, occupation group among the employed,
state vs PEP 2023); two-way targets (sex by age group, marital status by sex); descriptive
cross-tabs; the count of every consistency rule's violations (`rules.toml`, must be 0);
and, once personas are enriched, Big Five mean/sd and fact-category shares by sex, race
and age group over all enriched personas (census and seed), so users can see skew (the
stereotype guard).

Decisions:
- Only `source == "census"` rows are compared; seed personas describe their seed file.
- Unconditioned samples are compared with the ACS/PEP tables themselves. When a
  `PersonasConfig` with conditions/reweighting is passed, targets are the fitted model's
  shares under the same conditions, and the report says so (`conditions`).
- "Retired" counts as "Not in labor force", as in the ACS.
- Pure function of its inputs: no I/O; callers save `to_json()` / `to_markdown()`.
- `subject` names what was compared (e.g. the sampled skeletons before enrichment vs the
  accepted personas), because a run saves both and they must not be mistaken for each other.
- A table with no census rows (nothing accepted, or seeds only) still gets a report: its
  counts, rule violations (0) and skew tables, `max_tvd: null` and no share tables, since a
  TVD over 0 rows is undefined and 0.0 would read as a perfect match. Per attribute, `tvd`
  stays 0.0 when its universe is empty (`n == 0`) so consumers keep a number; Markdown
  shows it as n/a.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from personafoundry import census_tables as ct
from personafoundry.census import conditioned_model, conditions_of
from personafoundry.census_fit import EDU, INC, RACE, SEX, WORK, fit_census_model
from personafoundry.config import PersonasConfig
from personafoundry.rules import load_rules, rule_violations

TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


@dataclass(frozen=True)
class CalibrationReport:
    """Per-attribute and two-way comparisons, rule violations and skew tables."""

    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.data

    def to_markdown(self) -> str:
        d = self.data
        title = "# Census calibration report" + (f": {d['subject']}" if d.get("subject") else "")
        lines = [
            title,
            "",
            f"Census vintage: {d['vintage']}  ",
            f"Tables: {', '.join(d['tables'])}  ",
            (
                f"Census personas: {d['rows']} (seed personas excluded: {d['excluded_rows']}; "
                "their unstated demographics come from the same joint, conditional on their text)  "
            ),
            f"Conditions: {d['conditions'] or 'none (full US population)'}  ",
            f"Targets: {d['target_source']}",
            "",
            f"Max TVD: {_tvd_text(d['max_tvd'])}; rule violations: {d['rule_violations_total']}",
        ]
        sections = {**d["attributes"], **d["two_way"]}
        if not d["rows"]:
            lines += ["", "No census personas in this table, so no shares to compare."]
            sections = {}
        else:
            lines += ["", "| attribute | universe | n | TVD |", "|---|---|---:|---:|"]
        for name, a in sections.items():
            tvd = _tvd_text(a["tvd"] if a["n"] else None)
            lines.append(f"| {name} | {a['universe']} | {a['n']} | {tvd} |")
        for name, a in sections.items():
            lines += [
                "",
                f"## {name} ({a['universe']})",
                "",
                "| category | target | sampled |",
                "|---|---:|---:|",
            ]
            lines += [
                f"| {c['category']} | {c['target']:.4f} | {c['sampled']:.4f} |"
                for c in a["categories"]
            ]
        lines += ["", "## Rule violations (rules.toml)", "", "| rule | rows |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in d["rule_violations"].items()]
        for name, tab in {**d["cross_tabs"], **d["skew"]}.items():
            lines += ["", f"## {name}", "", _frame_md(pd.DataFrame(tab))]
        return "\n".join(lines) + "\n"


def _tvd_text(tvd: float | None) -> str:
    return "n/a" if tvd is None else f"{tvd:.4f}"


def _frame_md(frame: pd.DataFrame) -> str:
    head = "| | " + " | ".join(map(str, frame.columns)) + " |"
    rows = [
        f"| {i} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |"
        for i, r in zip(frame.index, frame.to_numpy())
    ]
    return "\n".join([head, "|" + "---|" * (len(frame.columns) + 1), *rows])


def _compare(name: str, universe: str, cats: tuple, target: np.ndarray, values: pd.Series) -> dict:
    target = np.asarray(target, float) / max(float(np.sum(target)), 1e-300)
    counts = values.value_counts()
    n = int(counts.sum())
    sampled = np.array([counts.get(c, 0) for c in cats], float) / max(n, 1)
    other = n - int(sum(counts.get(c, 0) for c in cats))  # values outside the category set
    tvd = 0.5 * (np.abs(sampled - target).sum() + other / max(n, 1))
    return {
        "universe": universe,
        "n": n,
        "tvd": float(tvd) if n else 0.0,
        "categories": [
            {"category": str(c), "target": float(t), "sampled": float(s)}
            for c, t, s in zip(cats, target, sampled)
        ],
    }


def _acs_targets() -> dict[str, tuple[tuple, np.ndarray]]:
    marg, rules = ct.read_marginals(), load_rules()
    sex, s18, s65 = (marg[k].estimates for k in ("sex", "sex_18plus", "sex_65plus"))
    states, pop = ct.read_states()
    mar_m, mar_f = marg["marital_status_male_15plus"], marg["marital_status_female_15plus"]
    sexes = marg["sex"].categories
    return {
        "age_band": (marg["age_band"].categories, marg["age_band"].estimates),
        "sex": (sexes, sex),
        "race_ethnicity": (marg["race_ethnicity"].categories, marg["race_ethnicity"].estimates),
        "education_25plus": (rules.education_order, marg["education_25plus"].estimates),
        "household_income_18plus": (
            marg["household_income"].categories,
            marg["household_income"].estimates,
        ),
        "marital_status_male_15plus": (mar_m.categories, mar_m.estimates),
        "marital_status_female_15plus": (mar_f.categories, mar_f.estimates),
        "employment_status_16plus": (
            marg["employment_status_16plus"].categories,
            marg["employment_status_16plus"].estimates,
        ),
        "occupation_group_employed": (
            marg["occupation_group"].categories,
            marg["occupation_group"].estimates,
        ),
        "state": (states, pop),
        "sex_by_age_group": (
            _pairs(("under 18", "18-64", "65+"), sexes),
            np.stack([sex - s18, s18 - s65, s65]).ravel(),
        ),
        "marital_status_by_sex_15plus": (
            _pairs(sexes, mar_m.categories),
            np.concatenate([mar_m.estimates, mar_f.estimates]),
        ),
    }


def _pairs(a: tuple, b: tuple) -> tuple[str, ...]:
    return tuple(f"{x} | {y}" for x in a for y in b)


def _model_targets(cfg: PersonasConfig) -> dict[str, tuple[tuple, np.ndarray]]:
    """Shares implied by the fitted model under the config's conditions."""
    model, rules = fit_census_model(), load_rules()
    joint, state_p, _, _ = conditioned_model(model, cfg, rules)
    acs = _acs_targets()
    lo = model.ages.lo
    band_lo = np.array([ct.band_bounds(c, rules.max_age)[0] for c in acs["age_band"][0]])
    band = np.searchsorted(band_lo, lo, side="right") - 1

    def m(dims: tuple[int, ...], ages: np.ndarray) -> np.ndarray:
        return joint[ages].sum(axis=tuple(d for d in range(joint.ndim) if d not in dims))

    allg = np.ones(len(lo), bool)
    by_group = joint.sum(axis=(1, 2, 3, 4, 5, 6))
    out = dict(acs)
    out["age_band"] = (acs["age_band"][0], np.bincount(band, by_group, len(band_lo)))
    out["sex"] = (acs["sex"][0], m((SEX,), allg))
    out["race_ethnicity"] = (acs["race_ethnicity"][0], m((RACE,), allg))
    out["education_25plus"] = (acs["education_25plus"][0], m((EDU,), lo >= 25)[1:])
    out["household_income_18plus"] = (acs["household_income_18plus"][0], m((INC,), lo >= 18)[1:])
    sm = joint[lo >= 15].sum(axis=(0, 2, 3, 5, 6))[:, 1:]
    out["marital_status_male_15plus"] = (acs["marital_status_male_15plus"][0], sm[0])
    out["marital_status_female_15plus"] = (acs["marital_status_female_15plus"][0], sm[1])
    out["marital_status_by_sex_15plus"] = (acs["marital_status_by_sex_15plus"][0], sm.ravel())
    w = m((WORK,), lo >= 16)[1:]
    out["employment_status_16plus"] = (
        acs["employment_status_16plus"][0],
        np.concatenate([[w[:5].sum()], w[5:]]),
    )
    out["occupation_group_employed"] = (acs["occupation_group_employed"][0], w[:5])
    out["state"] = (acs["state"][0], state_p)
    age3 = np.where(lo >= 65, 2, np.where(lo >= 18, 1, 0))
    sa = joint.sum(axis=(2, 3, 4, 5, 6))
    out["sex_by_age_group"] = (
        acs["sex_by_age_group"][0],
        np.stack([sa[age3 == k].sum(0) for k in range(3)]).ravel(),
    )
    return out


def calibration_report(
    table: pa.Table, *, cfg: PersonasConfig | None = None, subject: str | None = None
) -> CalibrationReport:
    """Compare the census personas in `table` with their targets; see the module docstring.

    `subject` labels the report (title and JSON), e.g. "sampled skeletons".

    Input columns: `schemas/personas.py` (0 rows is fine).
    """
    rules = load_rules()
    census = (
        table.filter(pc.equal(table["source"], "census"))
        if "source" in table.column_names
        else table
    )
    conditions = conditions_of(cfg) if cfg is not None else {}
    targets = _model_targets(cfg) if conditions else _acs_targets()
    cols = [
        "age",
        "sex",
        "race_ethnicity",
        "state",
        "education",
        "employment_status",
        "soc_code",
        "marital_status",
        "household_income_bracket",
    ]
    df = census.select(cols).to_pandas()
    age = df["age"].astype("float64")
    bands = targets["age_band"][0]
    band_lo = [ct.band_bounds(c, rules.max_age)[0] for c in bands]
    df["age_band"] = (
        pd.Categorical.from_codes(np.searchsorted(band_lo, age.fillna(-1), "right") - 1, bands)
        if len(df)
        else pd.Series(dtype=object)
    )
    emp = df["employment_status"].replace({rules.retired_label: rules.nilf_label})
    group = df["soc_code"].dropna().str[:2].astype(int).map(_soc_group)
    acs_groups = targets["occupation_group_employed"][0]
    sexes = targets["sex"][0]
    age3 = np.where(age >= 65, "65+", np.where(age >= 18, "18-64", "under 18"))
    universes = {
        "age_band": ("total population", df["age_band"]),
        "sex": ("total population", df["sex"]),
        "race_ethnicity": ("total population", df["race_ethnicity"]),
        "education_25plus": ("25 years and over", df.loc[age >= 25, "education"]),
        "household_income_18plus": (
            "18 years and over (household income of adults)",
            df.loc[age >= 18, "household_income_bracket"],
        ),
        "marital_status_male_15plus": (
            "males 15 and over",
            df.loc[(age >= 15) & (df["sex"] == sexes[0]), "marital_status"],
        ),
        "marital_status_female_15plus": (
            "females 15 and over",
            df.loc[(age >= 15) & (df["sex"] == sexes[1]), "marital_status"],
        ),
        "employment_status_16plus": ("16 years and over", emp[age >= 16]),
        "occupation_group_employed": (
            "employed civilians 16+",
            group.map(lambda g: acs_groups[g] if g >= 0 else "other"),
        ),
        "state": ("total population", df["state"]),
    }
    attributes = {k: _compare(k, u, *targets[k], v) for k, (u, v) in universes.items()}
    two_way = {
        "sex_by_age_group": _compare(
            "sex_by_age_group",
            "total population",
            *targets["sex_by_age_group"],
            pd.Series(age3, index=df.index) + " | " + df["sex"],
        ),
        "marital_status_by_sex_15plus": _compare(
            "marital_status_by_sex_15plus",
            "15 years and over",
            *targets["marital_status_by_sex_15plus"],
            (df["sex"] + " | " + df["marital_status"])[age >= 15],
        ),
    }
    violations = rule_violations(census, rules)
    tvds = [a["tvd"] for a in [*attributes.values(), *two_way.values()] if a["n"]]
    data = {
        "subject": subject,
        "vintage": ct.VINTAGE,
        "tables": list(ct.TABLES),
        "sources": "seeds/census/SOURCES.md",
        "rows": census.num_rows,
        "excluded_rows": table.num_rows - census.num_rows,
        "conditions": conditions,
        "target_source": "fitted model under the conditions"
        if conditions
        else "ACS 2023 / PEP 2023 tables",
        "attributes": attributes,
        "two_way": two_way,
        "max_tvd": float(max(tvds)) if tvds else None,
        "rule_violations": violations,
        "rule_violations_total": int(sum(violations.values())),
        "cross_tabs": _cross_tabs(df, age),
        "skew": _skew(table),
    }
    return CalibrationReport(data)


def _soc_group(major: int) -> int:
    return next((i for i, (a, b) in enumerate(ct.ACS_OCCUPATION_SOC_RANGES) if a <= major <= b), -1)


def _cross_tabs(df: pd.DataFrame, age: pd.Series) -> dict[str, dict]:
    """Descriptive two-way shares (no census target): row-normalised."""
    adults = df[age >= 25]
    out = {}
    for name, (a, b) in {
        "education_by_age_band_25plus": ("age_band", "education"),
        "income_by_education_25plus": ("education", "household_income_bracket"),
        "employment_by_age_band_16plus": ("age_band", "employment_status"),
    }.items():
        frame = adults if "25plus" in name else df[age >= 16]
        if len(frame):
            tab = pd.crosstab(frame[a].astype(str), frame[b].astype(str), normalize="index")
            out[name] = {str(c): {str(i): float(v) for i, v in tab[c].items()} for c in tab.columns}
    return out


SKEW_AGE_BINS = (0, 18, 35, 65)  # under 18 / 18-34 / 35-64 / 65+


def _skew(table: pa.Table) -> dict[str, dict]:
    """Big Five mean/sd, fact-category shares and persona counts by sex, race and age group.

    Over every enriched persona (census and seed), so users can see whether generated
    facts or traits skew by group (the stereotype guard: traits are sampled independently
    of demographics, so their group means should differ only by sampling noise).
    `fact_category_gap_by_<group>`: per group, the largest |group share - overall share|
    over the categories.
    """
    out: dict[str, dict] = {}
    if table.num_rows == 0:
        return out
    df = table.select(["sex", "race_ethnicity", "age", "traits", "facts"]).to_pandas()
    df = df[df["traits"].notna() | (df["facts"].map(len) > 0)]  # enriched personas only
    if df.empty:
        return out
    labels = ["under 18", "18-34", "35-64", "65+"]
    df["age_group"] = pd.cut(df["age"], [*SKEW_AGE_BINS, 1000], right=False, labels=labels)
    df["age_group"] = df["age_group"].astype(str)
    has_traits = df["traits"].notna()
    facts = df[["facts", "sex", "race_ethnicity", "age_group"]].explode("facts").dropna()
    cats = facts["facts"].map(lambda f: f["category"]) if len(facts) else None
    for group in ("sex", "race_ethnicity", "age_group"):
        out[f"personas_by_{group}"] = {
            "n": {str(k): int(v) for k, v in df[group].value_counts().items()}
        }
        if has_traits.any():
            traits = pd.DataFrame(list(df.loc[has_traits, "traits"]), index=df.index[has_traits])
            by = traits.groupby(df.loc[has_traits, group])
            for stat, frame in (("mean", by.mean()), ("sd", by.std(ddof=0))):
                out[f"traits_{stat}_by_{group}"] = {
                    c: {str(i): float(v) for i, v in frame[c].items()} for c in TRAITS if c in frame
                }
        if cats is not None:
            tab = pd.crosstab(facts[group], cats, normalize="index")
            out[f"fact_categories_by_{group}"] = {
                str(c): {str(i): float(v) for i, v in tab[c].items()} for c in tab.columns
            }
            overall = cats.value_counts(normalize=True).reindex(tab.columns, fill_value=0.0)
            gap = (tab - overall).abs().max(axis=1)
            out[f"fact_category_gap_by_{group}"] = {
                "max_gap": {str(i): float(v) for i, v in gap.items()}
            }
    return out
