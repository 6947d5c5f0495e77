"""Report figures about who is in the release: census conformance and demographic skew.

Decisions:
- Population figures come from the release's calibration report
  (`validation/calibration.json`, written by the census gate), so the report shows exactly
  the targets the gate used: ACS/PEP shares for an unconditioned sample, the fitted
  model's shares under the run's conditions/reweighting otherwise (`conditions`,
  `target_source`). Only `source = census` personas are compared, as in the gate.
- Age-sex pyramid reference: the ACS 2023 1-year profile has age bands (DP05) and sex by
  broad group (total, 18+, 65+) but no band-by-sex table, so each band's target share is
  split by sex with the sex ratio of the broad groups it spans (under 18 / 18-64 / 65+),
  weighted by the band's years in each. Both inputs are the calibration targets, so a
  conditioned sample gets a conditioned reference.
- Skew rule (stated in the figures): a group is flagged when it has at least
  SKEW_MIN_PERSONAS personas and its mean Big Five trait differs from the whole release's
  mean by at least SKEW_TRAIT_SD standard deviations (Cohen's d of 0.5, a "medium"
  effect), or, for fact categories, when it has at least SKEW_MIN_FACTS facts and a
  category's share differs from the whole by at least SKEW_SHARE_POINTS (absolute).
"""

from __future__ import annotations

from typing import Any

import duckdb

from personafoundry import census_tables as ct
from schemas.personas import TRAITS

SKEW_MIN_PERSONAS = 10
SKEW_TRAIT_SD = 0.5
SKEW_MIN_FACTS = 20
SKEW_SHARE_POINTS = 0.10
SKEW_RULE = (
    f"flag a group with >= {SKEW_MIN_PERSONAS} personas whose mean trait is >= {SKEW_TRAIT_SD} "
    f"SD from the whole release's mean, or with >= {SKEW_MIN_FACTS} facts whose share of a "
    f"fact category differs from the whole by >= {SKEW_SHARE_POINTS:.2f}"
)
AGE_GROUP_SQL = (
    "CASE WHEN age < 18 THEN 'under 18' WHEN age < 30 THEN '18-29' WHEN age < 50 THEN '30-49' "
    "WHEN age < 65 THEN '50-64' ELSE '65+' END"
)
GROUPS = {
    "sex": "coalesce(sex, '(none)')",
    "race_ethnicity": "coalesce(race_ethnicity, '(none)')",
    "age_group": AGE_GROUP_SQL,
}
BROAD = (("under 18", 0, 17), ("18-64", 18, 64), ("65+", 65, 200))


def population_figures(
    con: duckdb.DuckDBPyConnection, calibration: dict[str, Any] | None, census: dict[str, Any]
) -> dict[str, Any]:
    """Sampled vs target shares for every attribute, TVDs, pyramid and states."""
    if not calibration:
        why = census.get("note") or "no calibration report in this release"
        return {"skipped": f"no census comparison: {why}"}
    sections = {**calibration.get("attributes", {}), **calibration.get("two_way", {})}
    attributes = {
        name: {
            "universe": a["universe"],
            "n": a["n"],
            "tvd": round(a["tvd"], 6),
            "categories": [
                {
                    "category": c["category"],
                    "target": round(c["target"], 6),
                    "sampled": round(c["sampled"], 6),
                }
                for c in a["categories"]
            ],
        }
        for name, a in sections.items()
    }
    states = sorted(attributes.get("state", {}).get("categories", []), key=lambda c: -c["target"])
    return {
        "census_personas": calibration.get("rows", 0),
        "seed_personas_excluded": calibration.get("excluded_rows", 0),
        "conditions": calibration.get("conditions") or {},
        "target_source": calibration.get("target_source"),
        "vintage": calibration.get("vintage"),
        "gate": {k: census.get(k) for k in ("status", "note", "tvd_max")},
        "tvd": {name: a["tvd"] for name, a in attributes.items()},
        "max_tvd": round(max((a["tvd"] for a in attributes.values()), default=0.0), 6),
        "attributes": attributes,
        "pyramid": _pyramid(con, attributes),
        "states": states,
    }


def _band_split(lo: int, hi: int) -> dict[str, float]:
    years = hi - lo + 1
    return {g: max(0, min(hi, b) - max(lo, a) + 1) / years for g, a, b in BROAD}


def _pyramid(con: duckdb.DuckDBPyConnection, attributes: dict[str, Any]) -> dict[str, Any]:
    bands = attributes.get("age_band", {}).get("categories", [])
    two_way = attributes.get("sex_by_age_group", {}).get("categories", [])
    if not bands or not two_way:
        return {}
    from personafoundry.rules import load_rules

    max_age = load_rules().max_age
    bounds = [ct.band_bounds(b["category"], max_age) for b in bands]
    target = {c["category"]: c["target"] for c in two_way}
    male_share = {}
    for g, _, _ in BROAD:
        m, f = target.get(f"{g} | Male", 0.0), target.get(f"{g} | Female", 0.0)
        male_share[g] = m / (m + f) if m + f else 0.5
    rows = con.execute(
        "SELECT age, sex, count(*) FROM personas WHERE source = 'census' GROUP BY ALL"
    ).fetchall()
    total = sum(r[2] for r in rows) or 1
    male, female = [0.0] * len(bands), [0.0] * len(bands)
    for age, sex, n in rows:
        i = next((k for k, (lo, hi) in enumerate(bounds) if lo <= age <= hi), None)
        if i is not None:
            (male if sex == "Male" else female)[i] += n / total
    ref_male, ref_female = [], []
    for b, (lo, hi) in zip(bands, bounds):
        share = sum(w * male_share[g] for g, w in _band_split(lo, hi).items())
        ref_male.append(round(b["target"] * share, 6))
        ref_female.append(round(b["target"] * (1 - share), 6))
    return {
        "bands": [b["category"] for b in bands],
        "male": [round(v, 6) for v in male],
        "female": [round(v, 6) for v in female],
        "ref_male": ref_male,
        "ref_female": ref_female,
        "reference": "calibration targets: age-band share split by the sex ratio of its "
        "broad age group (under 18 / 18-64 / 65+)",
    }


def skew_figures(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Big Five means and fact-category shares per demographic group, with flags."""
    n = con.execute("SELECT count(*) FROM personas WHERE traits IS NOT NULL").fetchall()[0][0]
    out: dict[str, Any] = {"rule": SKEW_RULE, "traits": {}, "fact_categories": {}, "flags": []}
    if n:
        avgs = ", ".join(f"avg(traits.{t}), stddev_pop(traits.{t})" for t in TRAITS)
        whole = con.execute(f"SELECT {avgs} FROM personas WHERE traits IS NOT NULL").fetchall()[0]
        mean = {t: whole[2 * i] for i, t in enumerate(TRAITS)}
        sd = {t: whole[2 * i + 1] for i, t in enumerate(TRAITS)}
        out["traits_overall"] = {t: round(mean[t], 4) for t in TRAITS}
        out["traits_sd"] = {t: round(sd[t], 4) for t in TRAITS}
        for name, expr in GROUPS.items():
            means = ", ".join(f"avg(traits.{t})" for t in TRAITS)
            rows = con.execute(
                f"SELECT {expr} AS g, count(*), {means} FROM personas "
                "WHERE traits IS NOT NULL GROUP BY g ORDER BY g"
            ).fetchall()
            table = {}
            for g, count, *values in rows:
                table[g] = {"n": count, **{t: round(v, 4) for t, v in zip(TRAITS, values)}}
                for t, v in zip(TRAITS, values):
                    d = (v - mean[t]) / sd[t] if sd[t] else 0.0
                    if count >= SKEW_MIN_PERSONAS and abs(d) >= SKEW_TRAIT_SD:
                        out["flags"].append(_flag(name, g, count, t, v, mean[t], d))
            out["traits"][name] = table
    _fact_skew(con, out)
    return out


def _flag(group: str, value: str, n: int, what: str, v: float, whole: float, d: float) -> dict:
    return {
        "group": group,
        "value": value,
        "n": n,
        "measure": what,
        "group_value": round(v, 4),
        "overall": round(whole, 4),
        "difference": round(d, 3),
    }


def _fact_skew(con: duckdb.DuckDBPyConnection, out: dict[str, Any]) -> None:
    whole = dict(
        con.execute(
            "SELECT f.category, count(*) FROM personas, unnest(facts) AS u(f) GROUP BY ALL"
        ).fetchall()
    )
    total = sum(whole.values())
    if not total:
        return
    overall = {c: n / total for c, n in sorted(whole.items())}
    out["fact_categories_overall"] = {c: round(v, 4) for c, v in overall.items()}
    for name, expr in GROUPS.items():
        rows = con.execute(
            f"SELECT {expr} AS g, f.category, count(*) FROM personas, unnest(facts) AS u(f) "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for g, cat, k in rows:
            counts.setdefault(g, {})[cat] = k
        table = {}
        for g, cats in counts.items():
            n = sum(cats.values())
            shares = {c: cats.get(c, 0) / n for c in overall}
            table[g] = {"facts": n, **{c: round(v, 4) for c, v in shares.items()}}
            for c, v in shares.items():
                if n >= SKEW_MIN_FACTS and abs(v - overall[c]) >= SKEW_SHARE_POINTS:
                    out["flags"].append(
                        _flag(name, g, n, f"facts:{c}", v, overall[c], v - overall[c])
                    )
        out["fact_categories"][name] = table
