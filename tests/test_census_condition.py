"""Seed personas: what the text states is read, the rest is census-sampled conditionally."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from personafoundry.census import sample_personas
from personafoundry.census_condition import complete_seed_rows
from personafoundry.config import PersonasConfig
from personafoundry.paths import SEEDS_DIR
from personafoundry.persona_critics import PersonaContext, seed_conflicts
from personafoundry.persona_fill import reference_year
from personafoundry.rules import rule_violations
from personafoundry.seed_text import Stated, parse_seed_text
from personafoundry.seeds import load_seed_personas
from schemas.personas import SCHEMA

MARRIED = ("Now married, except separated",)
# (seed text, fields it must state); Persona-Chat profile sentences and PersonaHub one-liners
PARSED = [
    ("I am 34. I live in Ohio. My husband and I have two kids.",
     {"age_min": 34, "age_max": 34, "state": "Ohio", "marital_status": MARRIED}),
    ("I have two dogs. I work as a nurse.", {"soc_code": "29-1141", "employment_status": "Employed"}),
    ("I am a retired mail carrier. I have four grandchildren.",
     {"employment_status": "Retired", "soc_code": None, "past_soc_code": "43-5052", "age_min": 40}),
    ("I just moved to Ohio for graduate school.",
     {"state": "Ohio", "education": ("Bachelor's degree", "Graduate or professional degree")}),
    ("I grew up in Iowa. I teach third grade now.", {"state": None, "soc_code": "25-2021"}),
    ("I'm in my thirties and divorced.", {"age_min": 30, "age_max": 39,
                                          "marital_status": ("Divorced",)}),
    ("I have a 5-year-old son.", {"age_min": 0, "age_max": None}),
    ("My grandmother taught me to knit.", {"age_min": 0, "sex": None}),
    ("A retired chemistry teacher who restores antique clocks.",
     {"employment_status": "Retired", "past_soc_code": "25-2031"}),
    ("A night-shift emergency room nurse in Phoenix who is training for her first triathlon.",
     {"sex": "Female", "state": "Arizona", "soc_code": "29-1141"}),
    ("A 29-year-old Latina software engineer in Austin.",
     {"age_min": 29, "race_ethnicity": "Hispanic or Latino (of any race)", "state": "Texas",
      "soc_code": "15-1252"}),
    ("A widowed grandmother who runs the church bake sale.",
     {"sex": "Female", "marital_status": ("Widowed",), "age_min": 40}),
    ("A single father of twins who manages a neighborhood pharmacy.",
     {"sex": "Male", "soc_code": "29-1051"}),
    ("A teacher who mentors his students and her colleagues.", {"sex": None}),  # both: unstated
    ("We make $85,000 a year.", {"household_income": 85000}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_seed_text_statements_are_parsed(text: str, expected: dict) -> None:
    stated = parse_seed_text(text)
    assert {k: getattr(stated, k) for k in expected} == expected


def _rows(n: int, text: str = "A person.") -> list[dict]:
    return [{"persona_id": f"per_{i:016x}", "seed_text": text} for i in range(n)]


def test_stated_values_are_kept_and_the_rest_follows_the_census_conditional() -> None:
    """2,000 women in their thirties: marital status follows the fitted joint's conditional."""
    stated = Stated(age_min=30, age_max=39, sex="Female")
    out = complete_seed_rows(_rows(2000), [stated] * 2000, rng_seed=1)
    table = pa.Table.from_pylist(out, schema=SCHEMA.arrow_schema())
    ages = np.array(table["age"].to_pylist())
    assert ages.min() >= 30 and ages.max() <= 39
    assert set(table["sex"].to_pylist()) == {"Female"}
    # reference: census persons conditioned the same way by the census sampler's own path
    cfg = PersonasConfig(census_age_min=30, census_age_max=39, census_reweight={"sex": {"Male": 0}})
    census = sample_personas(20_000, cfg, rng_seed=2).table
    for column in ("marital_status", "education", "employment_status"):
        want, got = census[column].to_pylist(), table[column].to_pylist()
        keys = set(want) | set(got)
        tvd = 0.5 * sum(abs(want.count(k) / len(want) - got.count(k) / len(got)) for k in keys)
        assert tvd < 0.05, (column, tvd)
    assert sum(rule_violations(table).values()) == 0
    assert len(set(table["name"].to_pylist())) == 2000  # unique within the file


def test_impossible_statements_get_a_reason_not_a_repair() -> None:
    cases = [
        Stated(age_min=12, age_max=12, marital_status=MARRIED),
        Stated(age_min=30, age_max=30, employment_status="Retired"),
        Stated(age_min=19, age_max=19, soc_code="29-1215"),  # physicians: 26+, MD
        Stated(soc_code="99-9999"),
    ]
    out = complete_seed_rows(_rows(len(cases)), cases, rng_seed=0)
    assert all(isinstance(r, str) for r in out), out
    assert "OEWS" in out[-1]


def _shipped_texts() -> list[str]:
    out = []
    for path in sorted((SEEDS_DIR / "personas").iterdir()):
        if path.suffix == ".txt":
            out += [line for line in path.read_text().splitlines() if line.strip()]
        elif path.suffix == ".jsonl":
            out += [json.loads(line).get("text") or json.loads(line)["description"]
                    for line in path.read_text().splitlines() if line.strip()]  # fmt: skip
    return out


@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_shipped_seeds_get_complete_rule_abiding_demographics_their_text_agrees_with(
    rng_seed: int,
) -> None:
    files = sorted((SEEDS_DIR / "personas").iterdir())
    sample = load_seed_personas(files, rng_seed=rng_seed)
    table = sample.table
    assert sample.dropped.num_rows == 0
    assert sum(rule_violations(table).values()) == 0
    for column in ("age", "sex", "race_ethnicity", "state", "name", "census_vintage"):
        assert table[column].null_count == 0, column
    for row in table.to_pylist():  # no seed sentence contradicts its own demographics
        sentences = tuple(row["seed_text"].split(". "))
        context = PersonaContext(row, 1, 30, reference_year(), "", sentences)
        assert seed_conflicts(context) == [], row
    rows = {r["seed_text"][:30]: r for r in table.to_pylist()}
    nurse = rows["A night-shift emergency room n"]
    assert (nurse["state"], nurse["sex"], nurse["occupation"]) == (
        "Arizona", "Female", "Registered Nurses",
    )  # fmt: skip
    teacher = rows["A retired chemistry teacher wh"]
    assert teacher["employment_status"] == "Retired" and teacher["age"] == 71
    assert teacher["education"] in ("Bachelor's degree", "Graduate or professional degree")
    assert rows["I just moved to Ohio for gradu"]["state"] == "Ohio"


def test_seed_completion_is_deterministic(tmp_path: Path) -> None:
    files = sorted((SEEDS_DIR / "personas").iterdir())
    a = load_seed_personas(files, rng_seed=5).table
    assert a.equals(load_seed_personas(files, rng_seed=5).table)
    assert _shipped_texts()  # the example files hold both kinds
