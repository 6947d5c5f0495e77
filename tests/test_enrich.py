"""Persona enrichment against the real test server: accept, revise, reject, seed personas."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from personafoundry.cache import ResponseCache
from personafoundry.config import RunConfig
from personafoundry.endpoints import resolve_remote
from personafoundry.enrich import EnrichResult, enrich_personas, fact_slots
from personafoundry.ids import make_id
from personafoundry.llm import LlmClient
from personafoundry.schema import conform_table
from personafoundry.seeds import load_seed_personas
from schemas.personas import SCHEMA as PERSONAS
from schemas.reviews import SCHEMA as REVIEWS

SEED = 11
SKELETON_COLUMNS = [c for c in PERSONAS.columns if c.name not in {
    "narrative", "facts", "critic_scores", "rounds", "model", "prompt_version",
}]  # fmt: skip
TRAITS = {"openness": 0.7, "conscientiousness": 0.5, "extraversion": 0.2,
          "agreeableness": 0.8, "neuroticism": 0.4}  # fmt: skip
MARIA = {
    "persona_id": make_id("per", SEED, "maria"), "source": "census", "seed_text": None,
    "age": 34, "sex": "Female", "race_ethnicity": "Hispanic or Latino (of any race)",
    "state": "Texas", "education": "Bachelor's degree", "employment_status": "Employed",
    "occupation": "Registered Nurses", "soc_code": "29-1141",
    "marital_status": "Now married, except separated", "household_income": 85_000,
    "household_income_bracket": "$75,000 to $99,999", "name": "Maria Lopez", "traits": TRAITS,
}  # fmt: skip
GOOD = {
    "narrative": [
        "My name is Maria Lopez. I am 34 years old and I live in Austin, Texas.",
        "I work as a registered nurse at St. David's Medical Center.",
        "My husband Carlos and I have been married for six years.",
        "On weekends I paint and walk our dog Luna along Lady Bird Lake.",
    ],
    "facts": [
        {"category": "work", "statement": "I work night shifts at St. David's Medical Center."},
        {"category": "family", "statement": "My dog Luna is a four-year-old beagle."},
        {"category": "relationships", "statement": "My husband Carlos teaches math at Lanier High."},
        {"category": "hobbies", "statement": "I paint watercolors of Texas bluebonnets."},
        {"category": "habits", "statement": "I drink a cup of Cafe Bustelo every morning."},
        {"category": "location", "statement": "I rented a flat in El Paso from 2010 to 2016."},
    ],
}  # fmt: skip
BAD_AGE = {
    **GOOD,
    # in the opener, which `tidy_candidate` never cuts: only a revision can fix it
    "narrative": ["My name is Maria Lopez and I am 52 years old.", *GOOD["narrative"][1:]],
}
JUDGE_OK = {"feedback": "no contradictions", "score": 4}


def skeletons(*rows: dict[str, Any]) -> pa.Table:
    schema = pa.schema([pa.field(c.name, c.type) for c in SKELETON_COLUMNS])
    return pa.Table.from_pylist([{c.name: r.get(c.name) for c in SKELETON_COLUMNS} for r in rows],
                                schema=schema)  # fmt: skip


def schema_name(payload: dict[str, Any]) -> str:
    return payload["response_format"]["json_schema"]["name"]


class Script:
    """Responder: replies per schema name, popping scripted replies and repeating the last."""

    def __init__(self, **replies: list[Any]) -> None:
        self.replies = replies
        self.seen: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        name = schema_name(payload)
        self.seen.setdefault(name, []).append(payload)
        queue = self.replies[name]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply if isinstance(reply, dict) and "content" in reply else {"json": reply}


def run(cfg: RunConfig, tmp_path: Path, table: pa.Table, **kw: Any) -> EnrichResult:
    endpoints = {r: resolve_remote(r, getattr(cfg.llm, r)) for r in ("generator", "critic")}

    async def go() -> EnrichResult:
        cache = ResponseCache(tmp_path / "cache.sqlite")
        async with LlmClient(endpoints, cache, run_id="t") as llm:
            return await enrich_personas(table, cfg.personas, llm, rng_seed=SEED, **kw)

    return asyncio.run(go())


@pytest.fixture
def cfg(make_llm_config) -> RunConfig:
    return make_llm_config({"personas": {"facts_min": 4, "facts_max": 8, "max_rounds": 2}})


def test_good_persona_is_accepted_in_one_round_with_stable_fact_ids(llm_server, cfg, tmp_path):
    llm_server.responder = Script(PersonaDraft=[GOOD], JudgeReply=[JUDGE_OK])
    result = run(cfg, tmp_path, skeletons(MARIA))
    assert result.stats["accepted"] == 1 and result.dropped.num_rows == 0
    row = result.table.to_pylist()[0]
    assert row["name"] == "Maria Lopez" and row["state"] == "Texas" and row["rounds"] == 1
    assert row["narrative"].startswith("My name is Maria Lopez.")
    assert [f["fact_id"] for f in row["facts"]] == [
        make_id("fact", SEED, MARIA["persona_id"], i) for i in range(6)
    ]
    assert row["facts"][5]["valid_from"] == 2010 and row["facts"][5]["valid_to"] == 2016
    assert [s["expert"] for s in row["critic_scores"]] == [
        "ledger", "demographics", "coherence", "realism"
    ]  # fmt: skip
    assert all(s["passed"] for s in row["critic_scores"])
    assert row["model"] == "test-model" and "personas-generate" in row["prompt_version"]
    assert result.reviews.num_rows == 4 and all(result.reviews["accepted"].to_pylist())
    conform_table(result.table, PERSONAS)  # the contract holds (extra fact fields dropped)
    conform_table(result.reviews, REVIEWS)


def test_demographic_conflict_is_revised_with_the_critics_feedback(llm_server, cfg, tmp_path):
    script = Script(PersonaDraft=[BAD_AGE, GOOD], JudgeReply=[JUDGE_OK])
    llm_server.responder = script
    result = run(cfg, tmp_path, skeletons(MARIA))
    assert result.table.column("rounds").to_pylist() == [2]
    revision = script.seen["PersonaDraft"][1]["messages"]
    assert [m["role"] for m in revision] == ["system", "user"]  # a fresh draft, told why
    assert "gives age 52, but I am 34" in revision[-1]["content"]
    assert revision[-1]["content"].startswith(
        script.seen["PersonaDraft"][0]["messages"][1]["content"]
    )
    first = [r for r in result.reviews.to_pylist() if r["round"] == 1]
    assert {r["expert"]: r["passed"] for r in first} == {"ledger": True, "demographics": False}
    assert not any(r["accepted"] for r in first)
    assert len(script.seen["JudgeReply"]) == 2  # judges ran only on the draft that passed gates


def test_low_judge_score_triggers_a_revision(llm_server, cfg, tmp_path):
    low = {"feedback": "Facts 2 and 4 contradict each other.", "score": 2}
    script = Script(PersonaDraft=[GOOD], JudgeReply=[low, low, JUDGE_OK])
    llm_server.responder = script
    result = run(cfg, tmp_path, skeletons(MARIA))
    assert result.stats["accepted"] == 1 and result.stats["rounds"] == 2
    round1 = {r["expert"]: r for r in result.reviews.to_pylist() if r["round"] == 1}
    assert round1["coherence"]["score"] == 2.0 and not round1["coherence"]["passed"]
    assert "Facts 2 and 4" in script.seen["PersonaDraft"][1]["messages"][-1]["content"]


def test_persona_failing_every_round_is_dropped_with_reason(llm_server, cfg, tmp_path):
    llm_server.responder = Script(PersonaDraft=[BAD_AGE], JudgeReply=[JUDGE_OK])
    result = run(cfg, tmp_path, skeletons(MARIA))
    assert result.table.num_rows == 0 and result.stats["rejected"] == 1
    assert result.dropped.column("reason").to_pylist() == ["rejected by demographics"]
    assert result.dropped.column("persona_id").to_pylist() == [MARIA["persona_id"]]
    assert sorted(set(result.reviews.column("round").to_pylist())) == [1, 2]


def test_invalid_generator_replies_are_recorded_as_failed_attempts(llm_server, cfg, tmp_path):
    llm_server.responder = Script(PersonaDraft=[{"content": "{not json"}], JudgeReply=[JUDGE_OK])
    result = run(cfg, tmp_path, skeletons(MARIA))
    assert result.table.num_rows == 0
    assert result.dropped.column("reason")[0].as_py().startswith("generator failed: invalid reply")
    failed = result.reviews.to_pylist()
    assert [r["expert"] for r in failed] == ["generator", "generator"]
    assert all(r["score"] is None and "not valid JSON" in r["error"] for r in failed)
    assert result.stats["generator_failures"] == 2
    conform_table(result.reviews, REVIEWS)


SEED_CSV = (
    "text,name,age,sex,marital_status\n"
    '"I have two beagles named Max and Ruby. I work as a nurse. I live in Arizona.",'
    "Dana Whitfield,41,Female,Divorced\n"
)


def seed_skeleton(tmp_path: Path, content: str = SEED_CSV) -> pa.Table:
    """A seed persona as the pipeline loads it: census-conditional demographics filled in."""
    path = tmp_path / "seeds.csv"
    path.write_text(content)
    table = load_seed_personas([path], rng_seed=SEED).table
    return table.select([c.name for c in SKELETON_COLUMNS])


SEED_DRAFT = {
    "narrative": [
        "My name is Dana Whitfield. I am 41 years old and I live in Tucson, Arizona.",
        "I work as a nurse in the emergency room at Banner University Medical Center.",
        "I am divorced and I share a small house with my two beagles.",
        "I swim laps on most mornings.",
    ],
    "facts": [
        {"category": "work", "statement": "I have worked at Banner University since 2015."},
        {"category": "hobbies", "statement": "I swim 40 laps at the Ott Family YMCA."},
        {"category": "family", "statement": "My brother Luke lives in Flagstaff."},
        {"category": "habits", "statement": "I walk Max and Ruby at 6 a.m. every day."},
    ],
}  # fmt: skip


def test_seed_persona_keeps_its_stated_demographics_and_verbatim_seed_facts(
    llm_server, cfg, tmp_path
):
    script = Script(PersonaDraft=[SEED_DRAFT], JudgeReply=[JUDGE_OK])
    llm_server.responder = script
    result = run(cfg, tmp_path, seed_skeleton(tmp_path))
    row = result.table.to_pylist()[0]
    assert (row["age"], row["sex"], row["state"]) == (41, "Female", "Arizona")
    assert row["occupation"] == "Registered Nurses" and row["employment_status"] == "Employed"
    assert row["name"] == "Dana Whitfield" and row["census_vintage"].startswith("ACS 2023")
    assert [f["statement"] for f in row["facts"][:3]] == [
        "I have two beagles named Max and Ruby.", "I work as a nurse.", "I live in Arizona."
    ]  # fmt: skip
    assert [f["category"] for f in row["facts"][:2]] == ["family", "work"]
    assert set(script.seen) == {"PersonaDraft", "JudgeReply"}  # demographics: no LLM call
    assert result.stats["seed"] == 1
    prompt = script.seen["PersonaDraft"][0]["messages"][1]["content"]
    assert "- I work as a nurse." in prompt  # the model sees the seed as given truth


def test_seed_without_demographics_is_dropped_with_a_reason(llm_server, cfg, tmp_path):
    row = {**{k: None for k in MARIA}, "persona_id": make_id("per", SEED, "bare"),
           "source": "seed", "seed_text": "I fix bikes.", "name": "Sam Doe"}  # fmt: skip
    result = run(cfg, tmp_path, skeletons(row))
    assert llm_server.requests == []
    assert result.dropped["reason"][0].as_py().startswith("seed_demographics_missing")


def test_seed_contradicting_its_skeleton_is_dropped_before_any_llm_call(llm_server, cfg, tmp_path):
    row = {**MARIA, "persona_id": make_id("per", SEED, "old"), "source": "seed",
           "seed_text": "I am 70 years old. I live in Ohio."}  # fmt: skip
    result = run(cfg, tmp_path, skeletons(row))
    assert llm_server.requests == []
    reason = result.dropped.column("reason")[0].as_py()
    assert reason.startswith("seed_conflicts_with_profile") and "age 70" in reason
    assert "Ohio" in reason
    assert result.reviews.column("expert").to_pylist() == ["demographics"]


def test_duplicate_and_reserved_names_are_dropped_before_generation(llm_server, cfg, tmp_path):
    llm_server.responder = Script(PersonaDraft=[GOOD], JudgeReply=[JUDGE_OK])
    twin = {**MARIA, "persona_id": make_id("per", SEED, "twin")}
    other = {**MARIA, "persona_id": make_id("per", SEED, "other"), "name": "Ana Ruiz"}
    result = run(cfg, tmp_path, skeletons(MARIA, twin, other), reserved_names={"Ana Ruiz"})
    assert result.table.column("persona_id").to_pylist() == [MARIA["persona_id"]]
    reasons = dict(zip(result.dropped["persona_id"].to_pylist(),
                       result.dropped["reason"].to_pylist()))  # fmt: skip
    assert all(r.startswith("duplicate_name") for r in reasons.values()) and len(reasons) == 2
    generated = [p for p in llm_server.requests if schema_name(p) == "PersonaDraft"]
    assert len(generated) == 1


def test_rerun_gives_identical_rows_from_the_cache(llm_server, cfg, tmp_path):
    first = run(cfg, tmp_path, skeletons(MARIA))  # default schema-valid replies: word salad
    sent = len(llm_server.requests)
    second = run(cfg, tmp_path, skeletons(MARIA))
    assert len(llm_server.requests) == sent  # nothing paid twice
    assert second.stats["cached"] == second.stats["calls"] == first.stats["calls"] > 0
    assert first.dropped.equals(second.dropped) and first.reviews.equals(second.reviews)


def test_prompts_ask_for_the_configured_fact_count_and_guard_stereotypes(llm_server, cfg, tmp_path):
    llm_server.responder = Script(PersonaDraft=[GOOD], JudgeReply=[JUDGE_OK])
    run(cfg, tmp_path, skeletons(MARIA))
    payload = next(p for p in llm_server.requests if schema_name(p) == "PersonaDraft")
    schema = payload["response_format"]["json_schema"]["schema"]
    # the grammar asks for all 8 slots (room for `tidy_candidate`); GOOD's 6 facts pass
    assert (schema["properties"]["facts"]["minItems"], schema["properties"]["facts"]["maxItems"]) \
        == (8, 8)  # fmt: skip
    text = json.dumps(payload["messages"])
    assert "4 to 8 short first-person facts" in text and "race, ethnicity or sex" in text


def test_missing_traits_and_seed_names_are_sampled_from_data_not_the_llm(llm_server, cfg, tmp_path):
    unnamed = seed_skeleton(tmp_path, SEED_CSV.replace("Dana Whitfield", ""))
    sampled_at_load = unnamed["name"][0].as_py()
    census = {**MARIA, "traits": None}
    first, *rest = SEED_DRAFT["narrative"]
    first = first.replace("Dana Whitfield", "{}")

    def responder(payload: dict[str, Any]) -> dict[str, Any]:
        if schema_name(payload) == "JudgeReply":
            return {"json": JUDGE_OK}
        prompt = payload["messages"][1]["content"]
        if "Maria Lopez" in prompt:
            return {"json": GOOD}
        sampled = prompt.split("- Name: ")[1].split("\n")[0]
        return {"json": {**SEED_DRAFT, "narrative": [first.format(sampled), *rest]}}

    llm_server.responder = responder
    table = pa.concat_tables([skeletons(census), unnamed.cast(skeletons(census).schema)])
    # the seed's census/SSA name is taken in the release: it gets another one, not a drop
    result = run(cfg, tmp_path, table, reserved_names={sampled_at_load})
    rows = {r["source"]: r for r in result.table.to_pylist()}
    assert set(rows) == {"census", "seed"}, result.dropped.to_pylist()
    name = rows["seed"]["name"]
    assert name and len(name.split()) >= 2 and name not in ("Maria Lopez", sampled_at_load)
    for row in rows.values():
        assert set(row["traits"]) == set(TRAITS) and all(
            0 <= v <= 1 for v in row["traits"].values()
        )
    again = run(cfg, tmp_path, table, reserved_names={sampled_at_load})
    assert again.table.column("name").to_pylist() == result.table.column("name").to_pylist()
    assert again.table.column("traits").equals(result.table.column("traits"))


def test_default_ledger_is_10_to_14_facts_within_the_token_budget(
    llm_server, make_llm_config, tmp_path
):
    cfg = make_llm_config({})
    assert (cfg.personas.facts_min, cfg.personas.facts_max) == (10, 14)
    llm_server.responder = Script(PersonaDraft=[GOOD], JudgeReply=[JUDGE_OK])
    result = run(cfg, tmp_path, skeletons(MARIA))
    payload = next(p for p in llm_server.requests if schema_name(p) == "PersonaDraft")
    facts = payload["response_format"]["json_schema"]["schema"]["properties"]["facts"]
    assert (facts["minItems"], facts["maxItems"]) == (14, 14)  # the grammar fills every slot
    assert payload["max_tokens"] >= 45 * 14  # room for the longest ledger
    # GOOD has 6 facts: the reply fails the 10-14 schema and is recorded, not accepted
    assert result.table.num_rows == 0
    errors = [r["error"] for r in result.reviews.to_pylist() if r["expert"] == "generator"]
    assert errors and all("facts" in e for e in errors)


def test_llm_judges_can_be_switched_off(llm_server, make_llm_config, tmp_path):
    cfg = make_llm_config({"personas": {"facts_min": 4, "facts_max": 8, "llm_judges": False}})
    llm_server.responder = Script(PersonaDraft=[GOOD], JudgeReply=[JUDGE_OK])
    result = run(cfg, tmp_path, skeletons(MARIA))
    assert [s["expert"] for s in result.table.column("critic_scores")[0].as_py()] == [
        "ledger", "demographics"
    ]  # fmt: skip
    assert all(schema_name(p) == "PersonaDraft" for p in llm_server.requests)


def test_draft_is_tidied_and_the_grammar_is_guided_by_slots_and_patterns(llm_server, cfg, tmp_path):
    repeat = {"category": "hobbies", "statement": "I paint watercolors of Texas bluebonnets."}
    elsewhere = {"category": "location", "statement": "I live in Tulsa, Oklahoma."}
    draft = {**GOOD, "facts": [*GOOD["facts"], repeat, elsewhere]}
    llm_server.responder = Script(PersonaDraft=[draft], JudgeReply=[JUDGE_OK])
    result = run(cfg, tmp_path, skeletons(MARIA))
    assert result.stats["accepted"] == 1 and result.stats["facts_tidied"] == 2
    statements = [f["statement"] for f in result.table.to_pylist()[0]["facts"]]
    assert statements == [f["statement"] for f in GOOD["facts"]]  # first copy kept, in order
    payload = next(p for p in llm_server.requests if schema_name(p) == "PersonaDraft")
    schema = payload["response_format"]["json_schema"]["schema"]
    slots = schema["properties"]["facts"]["prefixItems"]  # one category per slot, 8 slots
    assert [slot["properties"]["category"]["const"] for slot in slots][:3] == [
        "family", "work", "health"
    ] and len(slots) == 8  # fmt: skip
    fact_pattern = slots[0]["properties"]["statement"]["pattern"]
    assert all(re.match(fact_pattern, f["statement"]) for f in GOOD["facts"][1:])
    assert not re.match(fact_pattern, "Maria works nights. She likes it.")
    sentence = schema["properties"]["narrative"]["items"]["pattern"]
    assert all(re.match(sentence, s) for s in GOOD["narrative"])
    assert not re.match(sentence, "Maria Lopez's work includes nursing.")


def test_a_category_met_twice_gets_another_topic_so_its_slot_is_not_a_copy():
    slots = [s["properties"] for s in fact_slots(14)]
    assert slots[10]["category"] == slots[0]["category"] == {"const": "family"}
    assert slots[10]["topic"]["const"] != slots[0]["topic"]["const"]
    assert len({s["topic"]["const"] for s in slots}) == 14  # every slot its own subject
    assert all(list(s) == ["topic", "category", "statement"] for s in slots)  # topic first
