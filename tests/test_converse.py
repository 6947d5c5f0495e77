"""The conversation generator-critic loop against the HTTP test server (scripted replies)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from personafoundry.cache import ResponseCache
from personafoundry.config import Budget, RunConfig
from personafoundry.converse import ConverseResult, generate_conversations, load_exemplars
from personafoundry.endpoints import resolve_remote
from personafoundry.errors import BudgetExceeded
from personafoundry.llm import LlmClient
from personafoundry.usage import BudgetGuard
from schemas.conversations import SCHEMA as CONVERSATIONS
from schemas.reviews import SCHEMA as REVIEWS

RULE_NAMES = [
    "turn_structure", "placeholders", "repetition", "language", "leakage", "length",
    "safety", "speaker_identity", "fact_use",
]  # fmt: skip
JUDGE_NAMES = ["faithfulness", "naturalness", "coherence", "engagement"]


def persona(pid: str, name: str, age: int, job: str, facts: list[str]) -> dict[str, Any]:
    return {
        "persona_id": pid, "name": name, "age": age, "state": "Ohio", "occupation": job,
        "narrative": f"My name is {name}. I live in Ohio and work as a {job.lower()}.",
        "facts": [
            {"fact_id": f"{pid}_f{i}", "category": "misc", "statement": s}
            for i, s in enumerate(facts)
        ],
    }  # fmt: skip


MARIA = persona(
    "per_000000000000000a", "Maria Lopez", 41, "Nurse",
    ["I work night shifts at a county hospital.", "I grow tomatoes in my backyard garden."],
)  # fmt: skip
JOHN = persona(
    "per_000000000000000b", "John Smith", 67, "Retired machinist",
    ["I restore vintage motorcycles in my garage.", "I have an old beagle named Rusty."],
)  # fmt: skip
TURNS = [
    "Evening! Is that engine noise from your garage again?",
    "Guilty. I am fixing up a vintage 1972 motorcycle in the garage, old bikes are my thing.",
    "I just got back from a night shift at the county hospital, so I barely noticed.",
    "Get some rest then. Rusty, my old beagle, will keep the street quiet for you.",
]
ANA = persona("per_000000000000000c", "Ana Doe", 34, "Teacher", ["I teach math at a high school."])
BEN = persona("per_000000000000000d", "Ben Roe", 52, "Teacher", ["I teach math at a high school."])
PEOPLE = (MARIA, JOHN, ANA, BEN)
GOOD_REVIEW = {
    "entailed": ["A1", "B1"], "contradicted": [], "faithfulness_note": "consistent",
    "naturalness_note": "reads naturally", "naturalness": 4,
    "coherence_note": "follows well", "coherence": 5,
    "engagement_note": "both share", "engagement": 4,
}  # fmt: skip


def personas_table(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows or (MARIA, JOHN)))


def pairs_table(*pairs: tuple[dict[str, Any], dict[str, Any]]) -> pa.Table:
    """Hand-made pairs (first speaker first), so tests do not depend on pairing draws."""
    rows = [
        {
            "conversation_id": f"conv_{i:016x}",
            "persona_ids": [a["persona_id"], b["persona_id"]],
            "scenario": f"{a['name'].split()[0]} and {b['name'].split()[0]} are neighbours who "
            "run into each other by the mailboxes one evening.",
        }
        for i, (a, b) in enumerate(pairs or ((MARIA, JOHN),))
    ]
    return pa.Table.from_pylist(rows)


def schema_name(payload: dict[str, Any]) -> str:
    return payload["response_format"]["json_schema"]["name"]


def speaker_of(payload: dict[str, Any]) -> str:
    return payload["messages"][0]["content"].split("You are ")[1].split()[0]


def turn_index(payload: dict[str, Any]) -> int:
    """How many turns the prompt's 'Conversation so far' already holds."""
    history = payload["messages"][1]["content"].split("Conversation so far:\n")[1].split("\n\n")[0]
    return 0 if history.startswith("(nothing yet") else len(history.splitlines())


class Talk:
    """Responder: turn texts by position (first draft, then revisions), reviews from a queue."""

    def __init__(self, turns: list[str] | None = None, revised: list[str] | None = None,
                 reviews: list[Any] | None = None, drafts: list[Any] | None = None) -> None:  # fmt: skip
        self.turns = turns or TURNS
        self.revised = revised or self.turns
        self.reviews = list(reviews or [GOOD_REVIEW])
        self.drafts = list(drafts or [])
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.by_speaker: dict[str, list[str]] = {}

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        name = schema_name(payload)
        self.calls.setdefault(name, []).append(payload)
        if name == "TurnReply":
            revising = "earlier draft was rejected" in payload["messages"][1]["content"]
            turns = self.by_speaker.get(speaker_of(payload)) or (
                self.revised if revising else self.turns
            )
            return {"json": {"text": turns[turn_index(payload)]}}
        if name == "OneCallReply":
            reply = self.drafts.pop(0) if len(self.drafts) > 1 else self.drafts[0]
            return reply if "content" in reply else {"json": reply}
        reply = self.reviews.pop(0) if len(self.reviews) > 1 else self.reviews[0]
        return reply if isinstance(reply, dict) and "content" in reply else {"json": reply}


def run(
    cfg: RunConfig, tmp_path: Path, pairs: pa.Table | None = None, *, target: int | None = None,
    budget: BudgetGuard | None = None, **over: Any,
) -> ConverseResult:  # fmt: skip
    base = {"turns_min": 4, "turns_max": 4, "mode": "turn_by_turn"}
    conv = cfg.converse.model_copy(update={**base, **over})
    pairs = pairs if pairs is not None else pairs_table()
    personas = personas_table(*PEOPLE)

    async def go() -> ConverseResult:
        endpoints = {r: resolve_remote(r, getattr(cfg.llm, r)) for r in ("generator", "critic")}
        async with LlmClient(
            endpoints, ResponseCache(tmp_path / "cache.sqlite"), run_id="t", budget=budget
        ) as llm:
            return await generate_conversations(
                pairs, personas, conv, llm, rng_seed=3, target=target
            )

    return asyncio.run(go())


def test_turn_by_turn_conversation_is_accepted_with_scores_and_facts(
    llm_server, llm_config, tmp_path
):
    talk = Talk()
    llm_server.responder = talk
    result = run(llm_config, tmp_path)
    assert result.stats["accepted"] == 1 and result.dropped.num_rows == 0
    assert result.table.schema.equals(CONVERSATIONS.arrow_schema(), check_metadata=False)
    row = result.table.to_pylist()[0]
    speakers = [t["speaker_id"] for t in row["turns"]]
    assert len(speakers) == 4 and speakers[0] != speakers[1] and speakers[::2] == speakers[:1] * 2
    assert set(row["persona_ids"]) == {MARIA["persona_id"], JOHN["persona_id"]}
    assert sorted(row["used_fact_ids"]) == sorted(
        [f"{MARIA['persona_id']}_f0", f"{JOHN['persona_id']}_f0", f"{JOHN['persona_id']}_f1"]
    )
    assert [s["expert"] for s in row["critic_scores"]] == RULE_NAMES + JUDGE_NAMES
    assert row["rounds"] == 1 and row["model"] == "test-model"
    assert row["prompt_version"].startswith("converse-turn/")
    reviews = result.reviews.to_pylist()
    assert len(reviews) == 13 and all(r["accepted"] and r["round"] == 1 for r in reviews)
    assert result.reviews.schema.equals(REVIEWS.arrow_schema(), check_metadata=False)
    assert len(talk.calls["TurnReply"]) == 4 and len(talk.calls["ConversationReview"]) == 1
    assert result.stats["tokens_per_accepted"] > 0 and result.stats["acceptance_rate"] == 1.0


def test_each_speaker_call_sees_only_its_own_persona(llm_server, llm_config, tmp_path):
    talk = Talk()
    llm_server.responder = talk
    run(llm_config, tmp_path)
    for payload in talk.calls["TurnReply"]:
        prompt = json.dumps(payload["messages"])
        me, other = (MARIA, JOHN) if speaker_of(payload) == "Maria" else (JOHN, MARIA)
        assert me["name"] in prompt and other["name"] not in prompt
        assert not any(f["statement"] in prompt for f in other["facts"])
        assert "nurse" not in prompt.lower() if me is JOHN else "machinist" not in prompt
    last = talk.calls["TurnReply"][-1]["messages"][1]["content"]
    assert 'You said: "' in last and "last message" in last


def test_one_call_schema_fixes_alternating_speakers(llm_server, llm_config, tmp_path):
    turns = [{"speaker": s, "text": t} for s, t in zip(["Maria", "John"] * 2, TURNS, strict=True)]
    talk = Talk(drafts=[{"turns": turns}])
    llm_server.responder = talk
    result = run(llm_config, tmp_path, mode="one_call")
    assert result.stats["accepted"] == 1
    schema = talk.calls["OneCallReply"][0]["response_format"]["json_schema"]["schema"]
    items = schema["properties"]["turns"]["prefixItems"]
    assert [i["properties"]["speaker"]["const"] for i in items] == ["Maria", "John"] * 2
    assert result.table["prompt_version"][0].as_py().startswith("converse-one-call/")


def test_rejected_draft_is_revised_with_feedback_keeping_good_turns(
    llm_server, llm_config, tmp_path
):
    first = [TURNS[0], "Hi [name]. " + TURNS[1], *TURNS[2:]]
    talk = Talk(turns=first, revised=TURNS)
    llm_server.responder = talk
    result = run(llm_config, tmp_path)
    assert result.stats["accepted"] == 1
    assert result.table["rounds"][0].as_py() == 2
    reviews = result.reviews.to_pylist()
    first = [r for r in reviews if r["round"] == 1]
    assert [r["expert"] for r in first if not r["passed"]] == ["placeholders"]
    assert not any(r["accepted"] for r in first) and len(first) == len(RULE_NAMES)
    assert all(r["accepted"] for r in reviews if r["round"] == 2)
    # round 2 keeps turn 1 (before the flagged turn 2) and rewrites turns 2-4 with feedback
    assert len(talk.calls["TurnReply"]) == 4 + 3
    revision = talk.calls["TurnReply"][4]["messages"][1]["content"]
    assert "earlier draft was rejected" in revision and "[name]" in revision
    text = " ".join(t["text"] for t in result.table.to_pylist()[0]["turns"])
    assert "[name]" not in text


def test_exhausted_rounds_drop_the_conversation_with_reason(llm_server, llm_config, tmp_path):
    talk = Talk(turns=[t + " Right, [name]?" for t in TURNS])
    llm_server.responder = talk
    result = run(llm_config, tmp_path, max_rounds=2)
    assert result.table.num_rows == 0 and result.stats["rejected"] == 1
    dropped = result.dropped.to_pylist()[0]
    assert dropped["reason"].startswith("rejected by") and "placeholders" in dropped["reason"]
    assert dropped["rounds"] == 2 and len(dropped["turns"]) == 4
    assert {r["round"] for r in result.reviews.to_pylist()} == {1, 2}
    assert not any(result.reviews["accepted"].to_pylist())
    assert result.stats["failed.placeholders"] == 2 and result.stats["rejected.critics"] == 1
    # by final rejecting expert: once per conversation, not once per round
    assert result.stats["rejected_by.placeholders"] == 1
    assert not any(k.startswith("rejected_by.") and k != "rejected_by.placeholders"
                   for k in result.stats)  # fmt: skip
    assert "ConversationReview" not in talk.calls  # judges never pay for a gated draft


M0, M1 = (f["fact_id"] for f in MARIA["facts"])
J0, J1 = (f["fact_id"] for f in JOHN["facts"])


def test_judge_rejection_triggers_revision(llm_server, llm_config, tmp_path):
    bad = {**GOOD_REVIEW, "contradicted": ["B2"], "faithfulness_note": "John has no dog."}
    talk = Talk(reviews=[bad, GOOD_REVIEW])
    llm_server.responder = talk
    result = run(llm_config, tmp_path)
    assert result.stats["accepted"] == 1 and result.table["rounds"][0].as_py() == 2
    faith = [r for r in result.reviews.to_pylist() if r["expert"] == "faithfulness"]
    # round 2: the used facts A1, B1 entailed, B2 (Rusty) used but in neither list: neutral
    assert [(r["round"], r["passed"], r["score"]) for r in faith] == [
        (1, False, 1.0),
        (2, True, round(3 + 2 * 2 / 3, 2)),
    ]
    assert "Rusty" in faith[0]["feedback"]
    assert json.loads(faith[0]["details"])["used"] == {
        M0: "entailed",
        J0: "entailed",
        J1: "contradicted",
    }
    assert json.loads(faith[1]["details"]) == {
        "used": {M0: "entailed", J0: "entailed", J1: "neutral"},
        "unused_entailed": [], "unused_contradicted": [],
    }  # fmt: skip
    assert len(talk.calls["TurnReply"]) == 8  # a judge failure rewrites every turn


def test_a_contradicted_fact_the_conversation_did_not_use_fails_faithfulness(
    llm_server, llm_config, tmp_path
):
    """Passive constraint: a line may not contradict any fact of the speaker, used or not."""
    bad = {**GOOD_REVIEW, "entailed": ["A1", "B1", "B2"], "contradicted": ["A2"]}
    llm_server.responder = Talk(reviews=[bad])
    result = run(llm_config, tmp_path, max_rounds=1)
    assert result.stats["accepted"] == 0
    [faith] = [r for r in result.reviews.to_pylist() if r["expert"] == "faithfulness"]
    assert not faith["passed"] and "tomatoes" in faith["feedback"]
    assert json.loads(faith["details"]) == {
        "used": {M0: "entailed", J0: "entailed", J1: "entailed"},
        "unused_entailed": [], "unused_contradicted": [M1],
    }  # fmt: skip
    assert result.stats["rejected_by.faithfulness"] == 1


@pytest.mark.parametrize(
    ("entailed", "contradicted", "error"),
    [
        (["A1", "C7"], [], "Input should be"),  # not a fact of either speaker
        (["A1", "B2"], ["B2"], "both entailed and contradicted"),
    ],
)
def test_judge_naming_unknown_or_conflicting_facts_is_malformed_and_recorded(
    llm_server, llm_config, tmp_path, entailed, contradicted, error
):
    bad = {**GOOD_REVIEW, "entailed": entailed, "contradicted": contradicted}
    talk = Talk(reviews=[bad])
    llm_server.responder = talk
    result = run(llm_config, tmp_path)
    judged = [r for r in result.reviews.to_pylist() if r["expert"] in JUDGE_NAMES]
    assert len(judged) == 4 and all(r["score"] is None and r["details"] is None for r in judged)
    assert all(error in r["error"] for r in judged)
    assert len(talk.calls["ConversationReview"]) >= 2  # asked, then re-asked with the error
    assert error in talk.calls["ConversationReview"][1]["messages"][-1]["content"]


def test_separate_faithfulness_judge_checks_ids_and_keeps_labels(llm_server, llm_config, tmp_path):
    replies = [
        {"entailed": ["A1"], "contradicted": ["A1"], "note": "?"},
        {"entailed": ["A1", "B1"], "contradicted": [], "note": "fine"},
    ]

    llm_server.responder = separate_judges(Talk(), replies)
    result = run(llm_config, tmp_path, judges="separate")
    [faith] = [r for r in result.reviews.to_pylist() if r["expert"] == "faithfulness"]
    assert faith["passed"] and faith["error"] is None
    assert json.loads(faith["details"])["used"] == {M0: "entailed", J0: "entailed", J1: "neutral"}
    rules = [r for r in result.reviews.to_pylist() if r["expert"] in RULE_NAMES]
    assert all(r["details"] is None for r in rules)


def test_malformed_judge_output_is_recorded_and_does_not_block(llm_server, llm_config, tmp_path):
    talk = Talk(reviews=[{"content": "{not json"}])
    llm_server.responder = talk
    result = run(llm_config, tmp_path)
    assert result.stats["accepted"] == 1
    judged = [r for r in result.reviews.to_pylist() if r["expert"] in JUDGE_NAMES]
    assert len(judged) == 4
    assert all(
        r["score"] is None and r["passed"] and "not valid JSON" in r["error"] for r in judged
    )
    scores = result.table.to_pylist()[0]["critic_scores"]
    assert [s["expert"] for s in scores] == RULE_NAMES  # unscored judges are not in critic_scores
    assert len(talk.calls["ConversationReview"]) >= 2  # asked, then re-asked


def test_generator_failure_is_a_review_row_with_error(llm_server, llm_config, tmp_path):
    llm_server.responder = lambda payload: {"content": "not json at all"}
    result = run(llm_config, tmp_path, max_rounds=2)
    assert result.table.num_rows == 0
    rows = result.reviews.to_pylist()
    assert [(r["expert"], r["round"], r["score"]) for r in rows] == [
        ("generator", 1, None),
        ("generator", 2, None),
    ]
    assert all("turn 1" in r["error"] and "not valid JSON" in r["error"] for r in rows)
    assert result.dropped["reason"][0].as_py().startswith("generator failed")
    assert result.stats["rejected.generator"] == 1 and result.stats["rejected.critics"] == 0
    assert result.stats["rejected_by.generator"] == 1


def test_weighted_acceptance_tolerates_one_low_judge(llm_server, llm_config, tmp_path):
    low = {**GOOD_REVIEW, "naturalness": 2, "naturalness_note": "a bit stiff"}
    llm_server.responder = Talk(reviews=[low])
    strict = run(llm_config, tmp_path, max_rounds=1)
    assert strict.stats["accepted"] == 0
    llm_server.responder = Talk(reviews=[low])
    weighted = run(
        llm_config, tmp_path / "w", max_rounds=1, acceptance="weighted", accept_threshold=3.5
    )
    assert weighted.stats["accepted"] == 1
    natural = [
        s for s in weighted.table.to_pylist()[0]["critic_scores"] if s["expert"] == "naturalness"
    ]
    assert natural == [{"expert": "naturalness", "score": 2.0, "passed": False}]


def separate_judges(talk: Talk, faithfulness: list[dict[str, Any]]):
    """A responder for `judges="separate"`: faithfulness replies in turn (the last repeats),
    every quality judge scores 4, the rest is the talk."""

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        name = schema_name(payload)
        if name == "FaithfulnessReview":
            reply = faithfulness.pop(0) if len(faithfulness) > 1 else faithfulness[0]
            return {"json": reply}
        if name == "QualityReply":
            return {"json": {"feedback": "fine", "score": 4}}
        return talk(payload)

    return answer


def test_separate_judges_make_one_call_each(llm_server, llm_config, tmp_path):
    fine = {"entailed": ["A1"], "contradicted": [], "note": "fine"}
    llm_server.responder = separate_judges(Talk(), [fine])
    result = run(llm_config, tmp_path, judges="separate")
    assert result.stats["accepted"] == 1
    experts = [s["expert"] for s in result.table.to_pylist()[0]["critic_scores"]]
    assert experts == RULE_NAMES + JUDGE_NAMES
    assert result.stats["critic_requests"] == 4


def test_best_accepted_conversations_rotate_into_the_exemplars(llm_server, llm_config, tmp_path):
    teachers = TEACHERS
    drafts = [
        {"turns": [{"speaker": s, "text": t} for s, t in zip(names * 2, lines, strict=True)]}
        for names, lines in ((["Maria", "John"], TURNS), (["Ana", "Ben"], teachers))
    ]
    talk = Talk(drafts=drafts)
    llm_server.responder = talk
    pairs = pairs_table((MARIA, JOHN), (ANA, BEN))
    result = run(llm_config, tmp_path, pairs, wave_size=1, mode="one_call")
    assert result.stats["accepted"] == 2
    # both accepted conversations lead the pool, best mean judge score first
    run_ex = result.exemplars[:2]
    assert [e["source"] for e in run_ex] == ["run", "run"]
    assert {e["exemplar_id"] for e in run_ex} == set(result.table["conversation_id"].to_pylist())
    assert run_ex[0]["score"] >= run_ex[1]["score"]
    assert result.exemplars[-1]["source"] == "hand-written"
    # few-shot = earlier user/assistant exchanges between the system prompt and the request
    shots = [p["messages"][2]["content"] for p in talk.calls["OneCallReply"]]
    assert all(p["messages"][2]["role"] == "assistant" for p in talk.calls["OneCallReply"])
    assert TURNS[0] not in shots[0]  # a hand-written exemplar first
    assert json.dumps(TURNS[0])[1:-1] in shots[1]  # then the accepted conversation


def test_turn_by_turn_prompts_show_no_exemplar_lines(llm_server, llm_config, tmp_path):
    talk = Talk()
    llm_server.responder = talk
    run(llm_config, tmp_path, exemplars_shown=2)
    hand = [t["text"] for ex in load_exemplars() for t in ex["turns"]]
    prompts = [json.dumps(p["messages"]) for p in talk.calls["TurnReply"]]
    assert not any(line[:40] in p for line in hand for p in prompts)


def test_a_fresh_attempt_after_the_rounds_fail_reaches_the_requested_count(
    llm_server, llm_config, tmp_path
):
    good = [{"speaker": s, "text": t} for s, t in zip(["Maria", "John"] * 2, TURNS, strict=True)]
    bad = [{**t, "text": t["text"] + " Right, [name]?"} for t in good]
    talk = Talk(drafts=[{"turns": bad}, {"turns": bad}, {"turns": good}])
    llm_server.responder = talk
    result = run(llm_config, tmp_path, mode="one_call", max_rounds=2, max_attempts=2)
    assert result.stats["requested"] == 1 and result.stats["accepted"] == 1
    assert result.stats["shortfall"] == 0 and result.table["rounds"][0].as_py() == 3
    prompts = [p["messages"][-1]["content"] for p in talk.calls["OneCallReply"]]
    assert "earlier draft was rejected" in prompts[1]  # round 2 revises
    assert "earlier draft was rejected" not in prompts[2]  # round 3 starts over
    seeds = [p["seed"] for p in talk.calls["OneCallReply"]]
    assert len(set(seeds)) == 3


def test_the_attempt_cap_is_reported_when_it_stops_short(llm_server, llm_config, tmp_path):
    llm_server.responder = Talk(turns=[t + " Right, [name]?" for t in TURNS])
    result = run(llm_config, tmp_path, max_rounds=2, max_attempts=2)
    assert result.table.num_rows == 0
    assert result.stats["shortfall"] == 1 and result.stats["stopped.attempt_cap"] == 1
    [dropped] = result.dropped.to_pylist()
    assert dropped["reason"].startswith("attempt cap reached (2 x 2 rounds): rejected by")
    assert dropped["rounds"] == 4
    assert {r["round"] for r in result.reviews.to_pylist()} == {1, 2, 3, 4}


@pytest.mark.parametrize("mode", ["turn_by_turn", "one_call"])
def test_rerun_is_deterministic_and_served_from_cache(llm_server, llm_config, tmp_path, mode):
    turns = [{"speaker": s, "text": t} for s, t in zip(["Maria", "John"] * 2, TURNS, strict=True)]
    llm_server.responder = Talk(drafts=[{"turns": turns}])
    first = run(llm_config, tmp_path, mode=mode)
    sent = len(llm_server.requests)
    again = run(llm_config, tmp_path, mode=mode)
    assert len(llm_server.requests) == sent
    assert first.table.equals(again.table) and first.reviews.equals(again.reviews)
    assert again.stats["generator_cache_hits"] > 0 and again.stats["tokens"] == 0


@pytest.mark.embedded
@pytest.mark.timeout(1200)
def test_embedded_model_runs_the_loop_end_to_end(tmp_path):
    from personafoundry.embedded import EmbeddedServer
    from personafoundry.llm import Endpoint
    from personafoundry.modelfile import MODEL_SHA256

    cfg = RunConfig()
    conv = cfg.converse.model_copy(update={"turns_min": 4, "turns_max": 4, "max_rounds": 1})

    async def go(endpoints: dict[str, Endpoint]) -> ConverseResult:
        async with LlmClient(endpoints, ResponseCache(tmp_path / "c.sqlite"), run_id="e") as llm:
            return await generate_conversations(
                pairs_table(), personas_table(*PEOPLE), conv, llm, rng_seed=1
            )

    with EmbeddedServer(cfg.embedded) as server:
        endpoints = {
            role: Endpoint(role, server.base_url, server.model, "llamacpp",
                           f"embedded:{MODEL_SHA256}", getattr(cfg.llm, role))
            for role in ("generator", "critic")
        }  # fmt: skip
        result = asyncio.run(go(endpoints))
    assert result.table.num_rows + result.dropped.num_rows == 1
    assert result.reviews.num_rows >= 1 and set(result.reviews["round"].to_pylist()) == {1}
    if result.table.num_rows:
        turns = result.table.to_pylist()[0]["turns"]
        assert len(turns) == 4 and all(t["text"].strip() for t in turns)
    else:
        assert result.dropped["reason"][0].as_py()


TEACHERS = [
    "Long day? I just finished grading algebra tests for my high school class.",
    "Same! I teach math too, at the high school across town.",
    "Small world. Do your students also hate fractions as much as mine do?",
    "Every single one of them. See you at the next district meeting, I hope.",
]
STOP_KEYS = ("stopped.attempt_cap", "stopped.unknown_persona", "stopped.out_of_pairs")


def reserve_talk() -> Talk:
    """Maria and John never get past the placeholder gate; Ana and Ben are accepted."""
    talk = Talk()
    bad = [t + " Right, [name]?" for t in TURNS]
    talk.by_speaker = {"Maria": bad, "John": bad, "Ana": TEACHERS, "Ben": TEACHERS}
    return talk


def test_a_target_gets_exactly_that_many_accepted_using_reserve_pairs(
    llm_server, llm_config, tmp_path
):
    llm_server.responder = reserve_talk()
    pairs = pairs_table((MARIA, JOHN), (ANA, BEN), (JOHN, MARIA))
    result = run(llm_config, tmp_path, pairs, target=1, max_rounds=1)
    assert result.table.num_rows == 1
    assert result.table["persona_ids"][0].as_py() == [ANA["persona_id"], BEN["persona_id"]]
    s = result.stats
    assert (s["requested"], s["accepted"], s["shortfall"]) == (1, 1, 0)
    assert (s["pairs"], s["unused_pairs"], s["stopped.attempt_cap"]) == (3, 1, 1)
    assert s["stopped.out_of_pairs"] == 0 and s["rejected_by.placeholders"] == 1
    reasons = dict(zip(result.dropped["conversation_id"].to_pylist(),
                       result.dropped["reason"].to_pylist(), strict=True))  # fmt: skip
    ids = pairs["conversation_id"].to_pylist()
    assert reasons[ids[0]].startswith("rejected by") and reasons[ids[2]] == "not_needed"
    # the reserve pair was never started: no review of it
    assert {r["item_id"] for r in result.reviews.to_pylist()} == {ids[0], ids[1]}


def test_a_target_the_pairs_cannot_reach_reports_shortfall_and_caps(
    llm_server, llm_config, tmp_path, caplog
):
    llm_server.responder = reserve_talk()
    pairs = pairs_table((MARIA, JOHN), (ANA, BEN), (JOHN, MARIA))
    with caplog.at_level("INFO", logger="personafoundry.converse"):
        result = run(llm_config, tmp_path, pairs, target=4, max_rounds=1)
    s = result.stats
    assert (s["requested"], s["accepted"], s["shortfall"]) == (4, 1, 3)
    assert (s["stopped.attempt_cap"], s["stopped.out_of_pairs"], s["unused_pairs"]) == (2, 3, 0)
    line = [r.getMessage() for r in caplog.records if "requested=4" in r.getMessage()]
    assert (
        line and "short by 3" in line[0] and "attempt cap (1 x 1 rounds) reached for 2" in line[0]
    )
    assert "no planned pair left for 3" in line[0]


@pytest.mark.parametrize(
    ("pairs", "target", "counts"),
    [  # counts: requested, accepted, shortfall, then the STOP_KEYS caps
        (((ANA, BEN),), None, (2, 1, 1, 0, 1, 0)),
        (((MARIA, JOHN), (ANA, BEN)), None, (3, 1, 2, 1, 1, 0)),
        (((MARIA, JOHN), (ANA, BEN)), 2, (2, 1, 1, 1, 1, 1)),
        (((MARIA, JOHN), (ANA, BEN)), 0, (0, 0, 0, 0, 1, 0)),
    ],
)
def test_stats_always_hold_requested_accepted_shortfall_and_the_caps(
    llm_server, llm_config, tmp_path, pairs, target, counts
):
    llm_server.responder = reserve_talk()
    ghost = {"persona_id": "per_00000000000000ff", "name": "Ghost"}
    table = pairs_table(*pairs, (MARIA, ghost))  # one pair names an unknown persona
    s = run(llm_config, tmp_path, table, target=target, max_rounds=1).stats
    assert tuple(s[k] for k in ("requested", "accepted", "shortfall", *STOP_KEYS)) == counts
    explained = s["stopped.out_of_pairs"] if target is not None else (
        s["stopped.attempt_cap"] + s["stopped.unknown_persona"]
    )  # fmt: skip
    assert s["shortfall"] == explained


def test_a_budget_cap_stops_the_stage_with_an_error_naming_the_cap(
    llm_server, llm_config, tmp_path
):
    """No `stopped.budget` counter: the cap raises out of the stage, naming the setting."""
    llm_server.responder = Talk()
    with pytest.raises(BudgetExceeded, match=r"token budget reached: \d+ of 1 tokens.*max_tokens"):
        run(llm_config, tmp_path, budget=BudgetGuard(Budget(max_tokens=1)))
