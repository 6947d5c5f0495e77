"""The conversations flow with a target of accepted conversations, on real Prefect.

The plausible responder drops a share of conversations in every round (the attempt cap
stops them), so reserves are needed. Personas are written straight into the run folder:
the personas stage is not what these tests are about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pyarrow as pa
import pytest
from pipeline_runs import flow_artifacts
from plausible import Plausible

from flows.conversations import conversations_flow
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.errors import BudgetExceeded
from personafoundry.exemplar_pool import shard_generations

DROP_RATE = 0.3
NAMES = ("Ava", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade")
HOBBIES = ("restore old bicycles", "bake sourdough bread", "play chess in the park",
           "grow tomatoes on my balcony", "sing in a church choir")  # fmt: skip


def persona(i: int) -> dict[str, Any]:
    name = f"{NAMES[i]} Tester{i}"
    return {
        "persona_id": f"per_{i:016x}", "name": name, "age": 25 + 4 * i,
        "state": "Ohio" if i % 2 else "Texas", "occupation": "Nurse",
        "narrative": f"My name is {name}. I work as a nurse and I {HOBBIES[i % 5]}.",
        "traits": dict.fromkeys(("openness", "conscientiousness", "extraversion",
                                 "agreeableness", "neuroticism"), 0.5),
        "facts": [
            {"fact_id": f"fct_{i}_1", "category": "hobby", "statement": f"I {HOBBIES[i % 5]}."},
            {"fact_id": f"fct_{i}_2", "category": "work",
             "statement": f"I have worked as a nurse for {3 + i} years."},
        ],
    }  # fmt: skip


def run(
    make_llm_config: Callable[..., RunConfig], personas: int, converse: dict[str, Any],
    **over: Any,
) -> tuple[dict[str, Any], RunStore, UUID]:  # fmt: skip
    """The conversations flow over `personas` hand-made personas: its stats, run folder and
    Prefect flow run id (whose artifacts are this run's, see `pipeline_runs.flow_artifacts`)."""
    base = {"seed": 7, "shard_size": 2, "run_id": "talk",
            "converse": {"max_rounds": 1, "turns_min": 4, "turns_max": 4, **converse}}  # fmt: skip
    cfg = make_llm_config(base | over)
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    table = pa.Table.from_pylist([persona(i) for i in range(personas)])
    store.write_shard("personas", 0, "hand-made", {"table": table}, {})
    state = conversations_flow(cfg, return_state=True)
    return state.result(), store, state.state_details.flow_run_id


def shard_rows(store: RunStore) -> list[dict[str, Any]]:
    """Per shard: its pairs, its share (`requested`), accepted, and the not-needed pairs."""
    pairs = store.read_part("pairs")
    rows = []
    for number, stats in enumerate(store.shard_stats("conversations")):
        dropped = store.read_part("conversations", "dropped", shards=[number])
        reasons = dropped["reason"].to_pylist() if dropped is not None else []
        rows.append({"pairs": stats["pairs"], "requested": stats["requested"],
                     "accepted": stats["accepted"],
                     "not_needed": reasons.count("not_needed")})  # fmt: skip
    assert sum(r["pairs"] for r in rows) == pairs.num_rows
    return rows


def expected_shares(target: int, rows: list[dict[str, Any]]) -> list[int]:
    """Recount the shares: per batch, what is missing, by pairs, remainder to the first."""
    shares = []
    for batch in shard_generations(len(rows)):
        missing = max(0, target - sum(r["accepted"] for r in rows[: batch.start]))
        sizes = [rows[n]["pairs"] for n in batch]
        exact = [missing * n // sum(sizes) for n in sizes]
        extra = missing - sum(exact)
        shares += [min(e + (i < extra), n) for i, (e, n) in enumerate(zip(exact, sizes))]
    return shares


def tables(store: RunStore) -> dict[str, list[dict[str, Any]]]:
    parts = ("table", "reviews", "dropped")
    return {p: store.read_part("conversations", p).to_pylist() for p in parts}


def test_a_target_is_met_exactly_across_batches_and_the_rest_is_not_needed(
    prefect_harness, llm_server, make_llm_config, tmp_path
):
    llm_server.responder = Plausible(drop_rate=DROP_RATE)
    converse = {"target": 6, "reserve_share": 1.0}  # 12 pairs of 10 personas, 6 shards
    stats, store, _ = run(make_llm_config, 10, converse)
    assert (stats["requested"], stats["accepted"], stats["shortfall"]) == (6, 6, 0)
    assert stats["stopped.out_of_pairs"] == 0 and stats["pairing.pairs_wanted"] == 12
    assert store.read_part("conversations").num_rows == 6
    rows = shard_rows(store)
    assert [r["requested"] for r in rows] == expected_shares(6, rows)
    batches = shard_generations(len(rows))
    working = [b for b in batches if any(rows[n]["accepted"] for n in b)]
    assert len(working) >= 2, rows  # later batches made up the first one's shortfall
    assert stats["stopped.attempt_cap"] > 0, "no conversation failed: reserves were not tested"
    # every pair is accounted for; the ones never needed were never started
    dropped = store.read_part("conversations", "dropped").to_pylist()
    assert stats["accepted"] + len(dropped) == stats["pairs"] == 12
    not_needed = {d["conversation_id"] for d in dropped if d["reason"] == "not_needed"}
    assert len(not_needed) == stats["unused_pairs"] > 0
    reviewed = {r["item_id"] for r in store.read_part("conversations", "reviews").to_pylist()}
    assert not reviewed & not_needed
    # a rerun resumes from the checkpoints: nothing is asked again, the tables are the same
    before, sent = tables(store), len(llm_server.requests)
    again, _, _ = run(make_llm_config, 10, converse)
    assert len(llm_server.requests) == sent and tables(store) == before
    assert again == stats
    # one shard at a time instead of many: the same tables
    serial, other, _ = run(
        make_llm_config, 10, converse, output_dir=str(tmp_path / "serial"),
        orchestration={"parallel_shards": 1},
    )  # fmt: skip
    assert tables(other) == before and serial["accepted"] == 6


def test_a_budget_stop_names_the_cap_and_the_resumed_run_meets_the_target_the_same_way(
    prefect_harness, llm_server, make_llm_config, tmp_path
):
    llm_server.responder = Plausible(drop_rate=DROP_RATE)
    converse = {"target": 6, "reserve_share": 1.0}
    _, straight, _ = run(make_llm_config, 10, converse, output_dir=str(tmp_path / "straight"))
    budget = {"llm": {"budget": {"max_tokens": 2500}}}  # about two conversations
    with pytest.raises(BudgetExceeded, match=r"token budget reached.*llm\.budget\.max_tokens"):
        run(make_llm_config, 10, converse, output_dir=str(tmp_path / "stopped"), **budget)
    stopped = RunStore.open(tmp_path / "stopped", "talk")
    done = len(stopped.shard_stats("conversations"))
    assert 0 < done < len(straight.shard_stats("conversations"))  # stopped between batches
    stats, resumed, _ = run(make_llm_config, 10, converse, output_dir=str(tmp_path / "stopped"))
    assert (stats["requested"], stats["accepted"], stats["shortfall"]) == (6, 6, 0)
    assert tables(resumed) == tables(straight)


def test_a_target_beyond_what_the_pairs_yield_reports_the_shortfall_and_why(
    prefect_harness, llm_server, make_llm_config
):
    llm_server.responder = Plausible(drop_rate=DROP_RATE)
    converse = {"target": 10, "reserve_share": 0.0}  # 4 personas meet in at most 6 pairs
    stats, _, flow_run = run(make_llm_config, 4, converse)
    failed = stats["stopped.attempt_cap"]
    assert stats["pairing.pairs"] == 6 and stats["pairing.pairs_wanted"] == 10
    assert stats["pairing.short_personas"] == 4
    assert (stats["requested"], stats["accepted"]) == (10, 6 - failed)
    assert stats["shortfall"] == stats["stopped.out_of_pairs"] == 4 + failed
    assert stats["unused_pairs"] == 0
    markdown = flow_artifacts(flow_run, ("conversations-summary",))["conversations-summary"]
    assert f"**Short by {4 + failed} of 10 requested**" in markdown
    assert f"no planned pair left for {4 + failed}" in markdown
    if failed:
        assert f"attempt cap (1 x 1 rounds) reached for {failed} pairs" in markdown


def test_without_a_target_every_planned_pair_is_one_requested_conversation(
    prefect_harness, llm_server, make_llm_config
):
    llm_server.responder = Plausible(drop_rate=DROP_RATE)
    stats, store, _ = run(make_llm_config, 6, {"per_persona": 2})
    pairs = store.read_part("pairs")
    assert pairs.num_rows == stats["pairs"] == stats["requested"] == 6
    assert stats["shortfall"] == stats["stopped.attempt_cap"] == 6 - stats["accepted"]
    assert stats["unused_pairs"] == stats["stopped.out_of_pairs"] == 0
    assert "pairing.pairs_wanted" not in stats
    assert [r["requested"] for r in shard_rows(store)] == [2, 2, 2]  # each shard's pairs
    assert stats["acceptance_rate"] == stats["accepted"] / 6
    dropped = store.read_part("conversations", "dropped")
    assert stats["accepted"] + (dropped.num_rows if dropped else 0) == 6


def test_a_target_of_zero_plans_no_pairs(prefect_harness, llm_server, make_llm_config):
    llm_server.responder = Plausible()
    stats, store, _ = run(make_llm_config, 4, {"target": 0})
    assert (stats["requested"], stats["accepted"], stats["shortfall"]) == (0, 0, 0)
    assert store.read_part("pairs").num_rows == 0 and not llm_server.requests
