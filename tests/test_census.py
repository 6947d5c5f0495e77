"""Census skeleton sampling: determinism, calibration, every consistency rule, conditioning."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from personafoundry import census_tables as ct
from personafoundry.calibration import calibration_report
from personafoundry.census import persona_ids, sample_personas
from personafoundry.census_tables import bracket_bounds, read_occupations
from personafoundry.config import PersonasConfig
from personafoundry.errors import ConfigError
from personafoundry.rules import load_rules, rule_violations
from schemas.personas import SCHEMA

CFG = PersonasConfig()
RULES = load_rules()
RULE_NAMES = sorted(rule_violations(SCHEMA.arrow_schema().empty_table(), RULES))


@pytest.fixture(scope="module")
def big() -> pa.Table:
    return sample_personas(50_000, CFG, rng_seed=11).table


def test_same_seed_gives_same_table() -> None:
    a = sample_personas(3_000, CFG, rng_seed=5).table
    b = sample_personas(3_000, CFG, rng_seed=5).table
    assert a.equals(b)


def test_different_seed_gives_different_table() -> None:
    a = sample_personas(3_000, CFG, rng_seed=5).table
    b = sample_personas(3_000, CFG, rng_seed=6).table
    assert a["persona_id"] != b["persona_id"]
    assert a.drop_columns(["persona_id"]) != b.drop_columns(["persona_id"])


def test_table_has_the_personas_contract_schema() -> None:
    sample = sample_personas(100, CFG, rng_seed=1)
    assert sample.table.schema == SCHEMA.arrow_schema()
    assert sample.table.num_rows == 100 and sample.dropped.num_rows == 0
    assert set(pc.unique(sample.table["source"]).to_pylist()) == {"census"}
    assert pc.all(pc.equal(sample.table["rounds"], 0)).as_py()
    assert sample.table["narrative"].null_count == 100
    assert sample.provenance["vintage"].startswith("ACS 2023")


def test_persona_ids_are_unique_well_formed_and_seeded() -> None:
    ids = persona_ids(42, 200_000).to_pylist()
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"per_[0-9a-f]{16}", i) for i in ids)
    assert ids[:3] == persona_ids(42, 3).to_pylist()
    assert not set(ids[:1000]) & set(persona_ids(43, 1000).to_pylist())


def test_rows_name_the_census_vintage_and_tables() -> None:
    t = sample_personas(10, CFG, rng_seed=1).table
    assert set(t["census_vintage"].to_pylist()) == {ct.VINTAGE}
    assert all(tables.split("; ") == list(ct.TABLES) for tables in t["census_tables"].to_pylist())


def test_marginals_match_acs_within_sampling_tolerance(big: pa.Table) -> None:
    report = calibration_report(big).to_json()
    tvds = {k: v["tvd"] for k, v in {**report["attributes"], **report["two_way"]}.items()}
    assert max(tvds.values()) < 0.02, tvds


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_consistency_rule_holds_on_large_sample(big: pa.Table, rule: str) -> None:
    assert rule_violations(big, RULES)[rule] == 0


def _row(**kw: object) -> pa.Table:
    base = {
        "age": 40,
        "education": "Bachelor's degree",
        "employment_status": "Employed",
        "occupation": "Registered Nurses",
        "soc_code": "29-1141",
        "marital_status": "Never married",
        "household_income": 60_000,
        "household_income_bracket": "$50,000 to $74,999",
    }
    child = {k: None for k in base} | {
        "age": 12,
        "education": "In school: Elementary school (grades 1-8)",
    }
    row = (child if kw.pop("child", False) else base) | kw
    schema = pa.schema([f for f in SCHEMA.arrow_schema() if f.name in row])
    return pa.Table.from_pylist([row], schema=schema)


UNEMPLOYED = {"employment_status": "Unemployed", "occupation": None, "soc_code": None}
BAD_ROWS = {
    "age_within_0_max": {"age": 130, "education": "Bachelor's degree"},
    "education_null_below_age": {"child": True, "age": 2, "education": "Less than 9th grade"},
    "marital_null_below_age": {"child": True, "marital_status": "Now married, except separated"},
    "employment_null_below_age": {"child": True, "employment_status": "Unemployed"},
    "income_null_below_age": {"child": True, "household_income": 1000},
    "occupation_only_if_employed": {"employment_status": "Unemployed"},
    "soc_code_only_with_occupation": {"occupation": None},
    "retired_from_age": {**UNEMPLOYED, "employment_status": "Retired"},
    "not_in_labor_force_is_retired_from_age": {
        **UNEMPLOYED,
        "age": 70,
        "employment_status": "Not in labor force",
    },
    "employment_min_age[Armed Forces]": {
        **UNEMPLOYED,
        "age": 16,
        "employment_status": "Armed Forces",
        "education": "In school: High school (grades 9-12)",
    },
    "child_education_label_matches_age": {"child": True, "education": "In school: Kindergarten"},
    "adult_education_is_attainment": {"education": "In school: Kindergarten"},
    "occupation_min_age": {
        "age": 24,
        "education": "Graduate or professional degree",
        "occupation": "Family Medicine Physicians",
        "soc_code": "29-1215",
    },
    "occupation_min_education": {"occupation": "Family Medicine Physicians", "soc_code": "29-1215"},
}
for _label, _lo in RULES.education_min_age.items():
    BAD_ROWS[f"education_min_age[{_label}]"] = {**UNEMPLOYED, "age": _lo - 1, "education": _label}


def test_every_rule_has_a_bad_row_case() -> None:
    assert set(BAD_ROWS) == set(RULE_NAMES)


@pytest.mark.parametrize("rule", sorted(BAD_ROWS))
def test_consistency_rule_catches_a_bad_row(rule: str) -> None:
    counts = rule_violations(_row(**BAD_ROWS[rule]), RULES)
    assert counts[rule] == 1


def test_good_row_breaks_no_rule() -> None:
    assert sum(rule_violations(_row(), RULES).values()) == 0


def test_household_income_lies_inside_its_bracket(big: pa.Table) -> None:
    adults = big.filter(pc.is_valid(big["household_income"]))
    for label in pc.unique(adults["household_income_bracket"]).to_pylist():
        lo, hi = bracket_bounds(label)
        sub = adults.filter(pc.equal(adults["household_income_bracket"], label))["household_income"]
        assert pc.min(sub).as_py() >= lo
        assert hi is None or pc.max(sub).as_py() <= hi


def test_occupations_are_oews_detailed_titles(big: pa.Table) -> None:
    occ = read_occupations(RULES)
    known = dict(zip(occ.soc_code, occ.title))
    pairs = set(zip(big["soc_code"].to_pylist(), big["occupation"].to_pylist())) - {(None, None)}
    assert len(pairs) > 300
    assert all(known[code] == title for code, title in pairs)


def test_ages_cover_the_open_top_band_up_to_max_age(big: pa.Table) -> None:
    ages = big["age"].to_numpy()
    assert ages.min() == 0 and ages.max() <= RULES.max_age
    old = ages[ages >= 85]
    assert 85 in old and np.mean(old <= 90) > 0.5  # the 85+ band thins out with age


def test_conditioning_restricts_state_and_age() -> None:
    cfg = PersonasConfig(census_states=["Texas"], census_age_min=18, census_age_max=34)
    sample = sample_personas(5_000, cfg, rng_seed=2)
    table = sample.table
    assert set(pc.unique(table["state"]).to_pylist()) == {"Texas"}
    assert pc.min(table["age"]).as_py() >= 18 and pc.max(table["age"]).as_py() <= 34
    assert sample.provenance["conditions"] == {"states": ["Texas"], "age": [18, 34]}
    assert sum(rule_violations(table, RULES).values()) == 0
    report = calibration_report(table, cfg=cfg).to_json()
    assert report["conditions"]["age"] == [18, 34] and report["max_tvd"] < 0.05


def test_reweight_oversamples_a_rare_group() -> None:
    group = "Not Hispanic: American Indian and Alaska Native alone"
    plain = sample_personas(20_000, CFG, rng_seed=3).table
    cfg = PersonasConfig(census_reweight={"race_ethnicity": {group: 20.0}})
    boosted = sample_personas(20_000, cfg, rng_seed=3).table

    def share(t: pa.Table) -> float:
        return pc.sum(pc.equal(t["race_ethnicity"], group)).as_py() / t.num_rows

    assert share(boosted) > 5 * share(plain)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (PersonasConfig(census_states=["Texass"]), "unknown state(s) ['Texass']"),
        (
            PersonasConfig(census_age_min=50, census_age_max=40),
            "census_age_min 50 > census_age_max",
        ),
        (PersonasConfig(census_reweight={"hobby": {"x": 2.0}}), "census_reweight.hobby"),
        (PersonasConfig(census_reweight={"sex": {"Other": 2.0}}), "unknown category 'Other'"),
    ],
)
def test_bad_conditions_raise_config_error(cfg: PersonasConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        sample_personas(10, cfg, rng_seed=0)


def test_fitted_joint_cache_round_trips_and_rejects_bad_files(tmp_path) -> None:
    from personafoundry.census_fit import _load_cached, _save_cached, cache_key

    joint = np.random.default_rng(0).random((3, 4))
    path = tmp_path / "census" / f"joint-{cache_key()}.npz"
    _save_cached(path, joint, 12, 1e-8)
    loaded, iterations, err = _load_cached(path, (3, 4))
    assert np.array_equal(loaded, joint) and iterations == 12 and err == 1e-8
    assert _load_cached(path, (4, 3)) is None  # another shape: refit
    path.write_bytes(b"not an npz")
    assert _load_cached(path, (3, 4)) is None
    assert len(cache_key()) == 24 and cache_key() == cache_key()
