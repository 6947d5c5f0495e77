"""Pairing personas into conversations: policies, coverage, scenarios, determinism."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from personafoundry.config import ConverseConfig
from personafoundry.errors import SeedFileError
from personafoundry.pairing import Scenario, load_scenarios, pair_personas, wanted_pairs

HOBBIES = ["gardening tomatoes", "chess tournaments", "marathon running", "oil painting"]


def persona(i: int, **overrides: Any) -> dict[str, Any]:
    hobby = HOBBIES[i % 4]
    row = {
        "persona_id": f"per_{i:016x}",
        "name": f"Person{i} Test",
        "age": 25 + 3 * i,
        "state": "Ohio" if i % 2 else "Texas",
        "occupation": "Nurse",
        "traits": dict.fromkeys(
            ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"),
            (i % 5) / 5,
        ),
        "facts": [
            {"fact_id": f"fct_{i}_1", "category": f"hobby_{i % 4}", "statement": f"Loves {hobby}."},
            {"fact_id": f"fct_{i}_2", "category": "work", "statement": "Works as a nurse."},
        ],
    }
    return row | overrides


def table(n: int, **overrides: Any) -> pa.Table:
    return pa.Table.from_pylist([persona(i, **overrides) for i in range(n)])


def test_pairing_is_deterministic_and_seed_dependent() -> None:
    cfg = ConverseConfig(per_persona=2)
    first = pair_personas(table(8), cfg, rng_seed=7).table
    assert first.equals(pair_personas(table(8), cfg, rng_seed=7).table)
    assert not first.equals(pair_personas(table(8), cfg, rng_seed=8).table)


@pytest.mark.parametrize("per_persona", [1, 2, 3])
def test_every_persona_appears_per_persona_times_and_no_pair_repeats(per_persona: int) -> None:
    result = pair_personas(table(8), ConverseConfig(per_persona=per_persona), rng_seed=1)
    appearances = Counter(pid for ids in result.table["persona_ids"].to_pylist() for pid in ids)
    assert set(appearances.values()) == {per_persona}
    pairs = [frozenset(ids) for ids in result.table["persona_ids"].to_pylist()]
    assert len(pairs) == len(set(pairs)) == 8 * per_persona // 2
    assert result.table["conversation_id"].unique().__len__() == len(pairs)
    assert result.dropped.num_rows == 0


def test_odd_persona_left_short_is_reported_with_reason() -> None:
    result = pair_personas(table(5), ConverseConfig(per_persona=1), rng_seed=3)
    assert result.table.num_rows == 2
    assert result.dropped.to_pylist() == [
        {
            "persona_id": result.dropped["persona_id"][0].as_py(),
            "reason": "no_partner",
            "missing": 1,
        }
    ]


def test_repeat_pairs_only_when_allowed() -> None:
    strict = pair_personas(table(2), ConverseConfig(per_persona=2), rng_seed=1)
    assert strict.table.num_rows == 1 and strict.dropped.num_rows == 2
    loose = pair_personas(
        table(2), ConverseConfig(per_persona=2, allow_repeat_pairs=True), rng_seed=1
    )
    assert loose.table.num_rows == 2
    assert loose.table["conversation_id"].unique().__len__() == 2


def test_similar_policy_pairs_shared_interests() -> None:
    result = pair_personas(table(8), ConverseConfig(pairing="similar"), rng_seed=2)
    for a, b in result.table["persona_ids"].to_pylist():
        assert int(a[-1], 16) % 4 == int(b[-1], 16) % 4  # same hobby category


def test_same_state_policy_keeps_pairs_in_one_state() -> None:
    result = pair_personas(table(8), ConverseConfig(pairing="same_state"), rng_seed=2)
    for a, b in result.table["persona_ids"].to_pylist():
        assert int(a[-1], 16) % 2 == int(b[-1], 16) % 2
    assert all(result.table["policy_met"].to_pylist())


def test_contrasting_policy_prefers_distant_ages() -> None:
    same = {"state": "Ohio", "traits": persona(0)["traits"], "facts": persona(0)["facts"]}
    rows = pa.Table.from_pylist([persona(i, **same) for i in range(8)])  # differ by age only

    def mean_gap(policy: str) -> float:
        gaps = [
            abs(int(a[-1], 16) - int(b[-1], 16))
            for seed in range(6)
            for a, b in pair_personas(rows, ConverseConfig(pairing=policy), rng_seed=seed)
            .table["persona_ids"]
            .to_pylist()
        ]
        return sum(gaps) / len(gaps)

    assert mean_gap("contrasting") > mean_gap("random")
    assert mean_gap("contrasting") >= 3.5  # 4 is the best possible for ages 0..7


def test_scenarios_respect_age_and_employment() -> None:
    catalog = [
        Scenario("office", "Office", "{a} and {b} at work.", min_age=18, employed=True),
        Scenario("park", "Park", "{a} and {b} in a park.", min_age=8),
    ]
    rows = [persona(i, age=10, occupation=None) for i in range(4)]
    result = pair_personas(
        pa.Table.from_pylist(rows), ConverseConfig(), rng_seed=1, scenarios=catalog
    )
    assert set(result.table["scenario_id"].to_pylist()) == {"park"}
    assert result.table["scenario"][0].as_py().endswith("in a park.")
    toddlers = [persona(i, age=2) for i in range(4)]
    none = pair_personas(
        pa.Table.from_pylist(toddlers), ConverseConfig(), rng_seed=1, scenarios=catalog
    )
    assert none.table.num_rows == 0 and none.dropped.num_rows == 4


def test_config_can_restrict_the_catalog() -> None:
    result = pair_personas(table(8), ConverseConfig(scenarios=["long_flight"]), rng_seed=1)
    assert set(result.table["scenario_id"].to_pylist()) == {"long_flight"}


def test_shipped_catalog_loads_and_bad_catalog_names_the_entry(tmp_path: Path) -> None:
    assert len(load_scenarios()) >= 8
    bad = tmp_path / "scenarios.toml"
    bad.write_text('[[scenario]]\nid = "x"\ntitle = "X"\nsetting = "{a} meets {c}."\n')
    with pytest.raises(SeedFileError, match="scenario #1"):
        load_scenarios(bad)


def appearances(result) -> Counter[str]:
    return Counter(pid for ids in result.table["persona_ids"].to_pylist() for pid in ids)


@pytest.mark.parametrize(
    ("target", "reserve_share", "wanted"),
    [(0, 0.5, 0), (2, 0.5, 3), (10, 0.1, 11), (7, 0.0, 7), (6, 0.5, 9), (4, 2.0, 12)],
)
def test_a_target_plans_target_plus_reserve_pairs(target, reserve_share, wanted) -> None:
    cfg = ConverseConfig(target=target, reserve_share=reserve_share)
    assert wanted_pairs(cfg) == wanted
    result = pair_personas(table(8), cfg, rng_seed=4)
    assert result.table.num_rows == wanted and result.dropped.num_rows == 0
    pairs = [frozenset(ids) for ids in result.table["persona_ids"].to_pylist()]
    assert len(set(pairs)) == len(pairs)  # never the same pair twice
    rounds = -(-2 * wanted // 8)  # ceil: the fewest appearances that hold the pairs
    assert max(appearances(result).values(), default=0) <= rounds
    assert result.stats["pairs_wanted"] == wanted and result.stats["per_persona"] == rounds


def test_a_target_grows_appearances_only_when_needed() -> None:
    # per_persona=3 would plan 12 pairs; 3 wanted pairs meet 6 personas once each
    few = pair_personas(table(8), ConverseConfig(per_persona=3, target=2), rng_seed=1)
    assert few.table.num_rows == 3 and set(appearances(few).values()) == {1}
    # 9 wanted pairs of 8 personas: every persona twice, two of them a third time
    for seed in range(5):
        more = pair_personas(table(8), ConverseConfig(target=6), rng_seed=seed)
        assert sorted(Counter(appearances(more).values()).items()) == [(2, 6), (3, 2)]


def test_a_target_beyond_the_possible_pairs_reports_who_is_short() -> None:
    cfg = ConverseConfig(target=10, reserve_share=0)  # 4 personas meet in at most 6 pairs
    result = pair_personas(table(4), cfg, rng_seed=1)
    assert result.table.num_rows == 6 and result.stats["pairs_wanted"] == 10
    assert result.dropped["reason"].to_pylist() == ["no_partner"] * 4
    assert sum(result.dropped["missing"].to_pylist()) == 2 * (10 - 6)  # appearances
    repeats = cfg.model_copy(update={"allow_repeat_pairs": True})
    again = pair_personas(table(4), repeats, rng_seed=1)
    assert again.table.num_rows == 10 and again.dropped.num_rows == 0
    assert again.table["conversation_id"].unique().__len__() == 10


def test_a_target_gives_more_rounds_to_those_who_can_talk() -> None:
    """Toddlers fit no scenario: the others meet more often to reach the wanted pairs."""
    catalog = [Scenario("park", "Park", "{a} and {b} in a park.", min_age=8)]
    rows = [persona(i, age=2 if i < 4 else 30) for i in range(10)]
    cfg = ConverseConfig(target=6, reserve_share=0)
    result = pair_personas(pa.Table.from_pylist(rows), cfg, rng_seed=1, scenarios=catalog)
    assert result.table.num_rows == 6 and result.dropped.num_rows == 0
    assert max(appearances(result).values()) == 2  # 6 adults, twice each


def test_the_fit_lookup_agrees_with_eligible_for_every_pair() -> None:
    """`_fit_check` answers per class of personas; it must equal asking every scenario."""
    from personafoundry.pairing import _fit_check, _profile
    from personafoundry.scenarios import eligible

    rows = [persona(i, age=age, state=state, occupation=job)
            for i, (age, state, job) in enumerate(
                (a, s, j) for a in (None, 6, 8, 12, 13, 14, 15, 16, 17, 18, 21, 70)
                for s in (None, "Ohio", "Texas") for j in (None, "Nurse"))]  # fmt: skip
    profiles = {r["persona_id"]: _profile(r) for r in rows}
    catalog = load_scenarios()
    fit = _fit_check(profiles, catalog)
    for p, a in profiles.items():
        for q, b in profiles.items():
            assert fit(p, q) is any(eligible(s, a, b) for s in catalog), (a, b)
