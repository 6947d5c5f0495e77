"""Calibration report: TVDs against the ACS/PEP tables, rule counts, skew, JSON and Markdown;
and the reports every personas run saves, whatever enrichment accepted."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from plausible import Plausible

from flows.personas import personas_flow
from personafoundry.calibration import calibration_report
from personafoundry.census import sample_personas
from personafoundry.checkpoint import RunStore
from personafoundry.config import PersonasConfig
from schemas.personas import TRAITS_TYPE


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return sample_personas(50_000, PersonasConfig(), rng_seed=21).table


def _tvds(report: dict) -> dict[str, float]:
    return {k: v["tvd"] for k, v in {**report["attributes"], **report["two_way"]}.items()}


def test_every_attribute_within_tolerance_at_50k(sample: pa.Table) -> None:
    report = calibration_report(sample).to_json()
    expected = {
        "age_band",
        "sex",
        "race_ethnicity",
        "education_25plus",
        "household_income_18plus",
        "marital_status_male_15plus",
        "marital_status_female_15plus",
        "employment_status_16plus",
        "occupation_group_employed",
        "state",
        "sex_by_age_group",
        "marital_status_by_sex_15plus",
    }
    assert set(_tvds(report)) == expected
    assert max(_tvds(report).values()) < 0.02
    assert report["rule_violations_total"] == 0 and report["rows"] == 50_000


def test_report_detects_a_skewed_sample(sample: pa.Table) -> None:
    men = sample.filter(pc.equal(sample["sex"], "Male"))
    tvds = _tvds(calibration_report(men).to_json())
    assert tvds["sex"] > 0.45
    assert tvds["marital_status_male_15plus"] < 0.03


def test_report_counts_rule_violations(sample: pa.Table) -> None:
    bad = sample.slice(0, 100)
    ages = pc.if_else(pc.is_valid(bad["marital_status"]), pa.scalar(10, pa.int16()), bad["age"])
    bad = bad.set_column(bad.schema.get_field_index("age"), "age", ages)
    report = calibration_report(bad).to_json()
    married = pc.sum(pc.is_valid(sample.slice(0, 100)["marital_status"])).as_py()
    assert report["rule_violations"]["marital_null_below_age"] == married > 0


def test_seed_rows_are_excluded(sample: pa.Table) -> None:
    seeds = sample.slice(0, 10).set_column(
        1, sample.schema.field("source"), pa.array(["seed"] * 10)
    )
    report = calibration_report(pa.concat_tables([sample.slice(10, 1000), seeds])).to_json()
    assert report["rows"] == 1000 and report["excluded_rows"] == 10


def test_json_names_vintage_and_tables_and_markdown_renders(sample: pa.Table) -> None:
    report = calibration_report(sample.slice(0, 2000))
    data = json.loads(json.dumps(report.to_json()))
    assert data["vintage"].startswith("ACS 2023") and "ACSDP1Y2023.DP05" in data["tables"]
    assert data["conditions"] == {}
    text = report.to_markdown()
    assert "# Census calibration report" in text and "| education_25plus |" in text
    assert "## Rule violations" in text


def test_conditioned_sample_is_compared_with_conditioned_targets() -> None:
    cfg = PersonasConfig(
        census_states=["Ohio", "Iowa"], census_age_min=65, census_reweight={"sex": {"Male": 2.0}}
    )
    table = sample_personas(20_000, cfg, rng_seed=4).table
    plain = calibration_report(table).to_json()
    conditioned = calibration_report(table, cfg=cfg).to_json()
    assert conditioned["conditions"]["states"] == ["Iowa", "Ohio"]
    assert max(_tvds(conditioned).values()) < 0.03
    assert _tvds(plain)["age_band"] > 0.5  # vs the whole population it is far off
    assert "fitted model" in conditioned["target_source"]


def test_skew_tables_appear_once_enriched(sample: pa.Table) -> None:
    t = sample.slice(0, 200)
    traits = pa.array(
        [
            {
                "openness": 0.5,
                "conscientiousness": 0.4,
                "extraversion": 0.3,
                "agreeableness": 0.6,
                "neuroticism": 0.2,
            }
        ]
        * 200,
        TRAITS_TYPE,
    )
    facts = pa.array(
        [[{"fact_id": "f1", "category": "work", "statement": "I work."}]] * 200,
        t.schema.field("facts").type,
    )
    t = t.set_column(t.schema.get_field_index("traits"), t.schema.field("traits"), traits)
    t = t.set_column(t.schema.get_field_index("facts"), t.schema.field("facts"), facts)
    seeds = t.slice(0, 50).set_column(1, t.schema.field("source"), pa.array(["seed"] * 50))
    report = calibration_report(pa.concat_tables([t.slice(50), seeds]))
    skew = report.to_json()["skew"]
    assert skew["traits_mean_by_sex"]["openness"]["Male"] == pytest.approx(0.5)
    assert skew["traits_sd_by_age_group"]["openness"]["18-34"] == pytest.approx(0.0)
    assert skew["fact_categories_by_race_ethnicity"]["work"]
    assert sum(skew["personas_by_sex"]["n"].values()) == 200  # seed personas included
    assert set(skew["fact_category_gap_by_sex"]["max_gap"].values()) == {0.0}
    assert "## fact_categories_by_age_group" in report.to_markdown()


def test_no_skew_tables_before_enrichment(sample: pa.Table) -> None:
    assert calibration_report(sample.slice(0, 100)).to_json()["skew"] == {}


@pytest.mark.parametrize(
    ("rows", "seeds", "cfg"),
    [
        (0, 0, None),  # nothing accepted
        (0, 10, None),  # only seed personas: nothing to compare with the census
        (0, 0, PersonasConfig(census_states=["Ohio"], census_age_min=65)),  # conditioned
    ],
)
def test_report_without_census_rows_says_so_instead_of_crashing(
    sample: pa.Table, rows: int, seeds: int, cfg: PersonasConfig | None
) -> None:
    seed_rows = sample.slice(0, seeds).set_column(
        1, sample.schema.field("source"), pa.array(["seed"] * seeds, pa.string())
    )
    table = pa.concat_tables([sample.slice(100, rows), seed_rows])
    report = calibration_report(table, cfg=cfg, subject="accepted personas")
    data = json.loads(json.dumps(report.to_json()))  # plain JSON all the way down
    assert data["rows"] == 0 and data["excluded_rows"] == seeds
    assert data["max_tvd"] is None  # undefined over 0 rows, not a perfect 0.0
    assert data["rule_violations_total"] == 0 and data["subject"] == "accepted personas"
    assert all(a["n"] == 0 for a in {**data["attributes"], **data["two_way"]}.values())
    text = report.to_markdown()
    assert text.startswith("# Census calibration report: accepted personas\n")
    assert "Max TVD: n/a" in text and "No census personas in this table" in text
    assert "| age_band |" not in text and "## Rule violations" in text


def test_empty_universe_shows_na_not_a_perfect_tvd() -> None:
    children = PersonasConfig(census_age_max=10)
    report = calibration_report(sample_personas(200, children, rng_seed=3).table, cfg=children)
    data = report.to_json()
    assert data["attributes"]["education_25plus"]["n"] == 0
    assert data["max_tvd"] is not None and data["rows"] == 200
    assert "| education_25plus | 25 years and over | 0 | n/a |" in report.to_markdown()


def unusable(payload: dict) -> dict:
    """A reply no persona draft parses from, so every persona fails (as on a tiny model)."""
    return {"content": "Sorry, I cannot help with that."}


@pytest.mark.parametrize(("responder", "accepted"), [(unusable, 0), (Plausible(), 4)])
def test_personas_run_saves_sampled_and_accepted_calibration_whatever_was_accepted(
    prefect_harness, llm_server, make_llm_config, responder, accepted: int
) -> None:
    llm_server.responder = responder
    cfg = make_llm_config(
        {"seed": 7, "shard_size": 2, "personas": {"census_count": 4, "max_rounds": 1}}
    )
    stats = personas_flow(cfg)
    assert stats.get("accepted", 0) == accepted
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    sampled, kept = store.read_json("calibration_sampled.json"), store.read_json("calibration.json")
    assert sampled["rows"] == 4 and sampled["subject"].startswith("sampled skeletons")
    assert sampled["max_tvd"] is not None and sampled["rule_violations_total"] == 0
    assert kept["rows"] == accepted and kept["subject"].startswith("accepted personas")
    assert (kept["max_tvd"] is None) == (accepted == 0)
    assert "report: accepted personas" in (store.root / "calibration.md").read_text()
    assert "report: sampled skeletons" in (store.root / "calibration_sampled.md").read_text()
