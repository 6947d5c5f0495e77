"""Document generation: deterministic critics, and the loop over HTTP to the test server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_doc_plan import MARIA_FACTS, make_personas, persona

from personafoundry.cache import ResponseCache
from personafoundry.config import DocumentsConfig, RunConfig
from personafoundry.doc_catalog import load_catalog
from personafoundry.doc_plan import PLAN_SCHEMA
from personafoundry.document_critics import (
    DocContext,
    distractor_problems,
    evidence_in,
    format_problems,
    leakage_problems,
    lexical_match,
)
from personafoundry.documents import DocumentsResult, generate_documents
from personafoundry.endpoints import ROLES, resolve_remote
from personafoundry.llm import LlmClient
from schemas import get_schema

CATALOG = load_catalog()
WHEN = datetime(2024, 3, 2, 9, 30, tzinfo=UTC)
MARIA = make_personas().to_pylist()[0]
RENT = MARIA["facts"][1]  # "I pay $1,150 a month in rent."
PICKLEBALL = MARIA["facts"][2]  # "I play pickleball every Saturday morning."


def ctx(doc_type: str, planned: list[dict[str, Any]] = (), **kw: Any) -> DocContext:
    facts = [{**f, "implied": False} for f in planned]
    return DocContext("doc_0000000000000001", CATALOG[doc_type], MARIA, WHEN, facts, **kw)


def receipt(
    total: float = 12.5, date: str = "2024-03-02", merchant: str = "Tulsa Pickleball Co"
) -> Any:
    items = [{"name": "Pickleball paddle", "price": 10.0}, {"name": "Grip tape", "price": 2.5}]
    return CATALOG["receipt"].model(merchant=merchant, date=date, items=items, total=total)


@pytest.mark.parametrize(
    ("draft", "expected"),
    [
        (receipt(), []),
        (receipt(total=13.0), ["total is 13.0 but the items sum to 12.50; set total to 12.50"]),
        (
            receipt(date="2024-02-30"),
            ["date '2024-02-30' is not a real date in the form YYYY-MM-DD"],
        ),
        (
            receipt(date="2019-03-02"),
            ["date 2019-03-02 is far from the document date; use 2024-03-02"],
        ),
        (receipt(merchant="[Store Name]"), ["remove the placeholder '[Store Name]'"]),
    ],
)
def test_format_expert_checks_dates_sums_and_placeholders(draft: Any, expected: list[str]) -> None:
    assert format_problems(draft, ctx("receipt")) == expected


def test_format_expert_checks_list_item_dates_and_counterpart_name() -> None:
    lines = [{"date": "2024-13-01", "payee": "RENT", "amount": -1150.0}]
    draft = CATALOG["bank_statement"].model(account="Checking 1234", lines=lines)
    assert format_problems(draft, ctx("bank_statement")) == [
        "lines[].date '2024-13-01' is not a real date in the form YYYY-MM-DD"
    ]
    mail = CATALOG["email"].model(
        sender="Maria Lopez",
        recipient="Ann",
        date="2024-03-02",
        subject="Hi",
        text="See you Saturday. Maria",
    )
    assert format_problems(mail, ctx("email", counterpart_name="Tom Reed")) == [
        "Tom Reed must appear by name in the document"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("As a 38-year-old nurse I need a break.", "exposition 'As a 38-year-old'"),
        ("Long day. As a registered nurses, ugh.", "'as a Registered nurses'"),
        ("This note reveals that I pay rent.", "exposition 'This note reveals'"),
        ("I am a 38 year old woman.", "exposition 'I am a 38 year old'"),
        ("Maria Lopez, a nurse, has lived in Dallas.", "remove the description of Maria Lopez"),
        ("Long night shift. Feet hurt. Sofia's recital Friday.", None),
    ],
)
def test_leakage_expert_flags_exposition(text: str, problem: str | None) -> None:
    draft = CATALOG["journal_note"].model(date="2024-03-02", title="Tuesday", text=text)
    problems = leakage_problems(draft, ctx("journal_note"))
    assert (problem is None) == (not problems)
    if problem:
        assert any(problem.lower() in p.lower() for p in problems)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Rent paid: $1150 for March, monthly.", True),
        ("RENT MARCH  -1,150.00 per month", True),
        ("Rent paid: $1200 for March, monthly.", False),  # the number must match
        ("Bought groceries for the week.", False),
    ],
)
def test_lexical_match_requires_numbers_and_most_words(body: str, expected: bool) -> None:
    assert lexical_match(RENT["statement"], body) is expected


def test_evidence_must_come_from_the_document() -> None:
    body = "Sat 8am pickleball at Riverside courts with Jen"
    assert evidence_in("pickleball at Riverside courts", body)
    assert not evidence_in("I play tennis on Sundays", body)
    assert not evidence_in("", body)


# -- the loop over HTTP ------------------------------------------------------------------------

GOOD_NOTE = {
    "date": "2024-03-02",
    "title": "Saturday",
    "text": "Pickleball every Saturday morning is the best part of my week. "
    "Rent went out today, $1,150 a month is steep.",
}


def plan_table(doc_type: str, facts: list[dict[str, Any]], **extra: Any) -> pa.Table:
    row = {
        "document_id": "doc_00000000000000aa",
        "persona_id": MARIA["persona_id"],
        "doc_type": doc_type,
        "role": "facts",
        "seq": 0,
        "timestamp": WHEN,
        "fact_ids": [f["fact_id"] for f in facts],
        "implied_fact_ids": [],
        "counterpart_id": None,
        "counterpart_name": None,
        "distractor_fact_id": None,
        "distractor_text": None,
        **extra,
    }
    return pa.Table.from_pylist([row], schema=PLAN_SCHEMA)


def schema_name(payload: dict[str, Any]) -> str:
    return payload["response_format"]["json_schema"]["name"]


def run(
    cfg: RunConfig, tmp_path: Path, plan: pa.Table, personas: pa.Table | None = None, **over: Any
) -> DocumentsResult:
    async def main() -> DocumentsResult:
        endpoints = {r: resolve_remote(r, getattr(cfg.llm, r)) for r in ROLES}
        cache = ResponseCache(tmp_path / "cache.sqlite")
        async with LlmClient(endpoints, cache, run_id="test") as llm:
            docs_cfg = cfg.documents.model_copy(update=over)
            people = make_personas() if personas is None else personas
            return await generate_documents(plan, people, docs_cfg, llm, rng_seed=7)

    return asyncio.run(main())


def responder(
    doc: Callable[[int], dict[str, Any]],
    judge_score: int = 5,
    evidence: str = "pickleball every Saturday",
) -> Callable[..., Any]:
    """Doc drafts from `doc(attempt)`, fact checks quoting the draft, judges scoring."""
    attempts = {"n": 0}

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        name = schema_name(payload)
        if name == "JudgeReply":
            return {"json": {"feedback": "fine", "score": judge_score}}
        if name == "FactCheckReply":
            return {"json": {"evidence": evidence, "revealed": True}}
        attempts["n"] += 1
        return {"json": doc(attempts["n"])}

    return answer


def test_good_draft_is_accepted_in_one_round(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    llm_server.responder = responder(lambda n: GOOD_NOTE)
    result = run(llm_config, tmp_path, plan_table("journal_note", [RENT, PICKLEBALL]))
    assert result.stats["accepted"] == 1 and result.dropped.num_rows == 0
    doc = result.table.to_pylist()[0]
    assert doc["revealed_fact_ids"] == [RENT["fact_id"], PICKLEBALL["fact_id"]]
    assert doc["body"].startswith("2024-03-02\nSaturday\n\nPickleball every")
    assert doc["title"] == "Saturday" and doc["rounds"] == 1 and doc["model"] == "test-model"
    assert json.loads(doc["fields"]) == GOOD_NOTE
    assert [s["expert"] for s in doc["critic_scores"]] == [
        "format",
        "leakage",
        "coverage",
        "faithfulness",
        "realism",
    ]
    assert result.table.select(get_schema("documents").names).schema.equals(
        get_schema("documents").arrow_schema(), check_metadata=False
    )
    assert result.reviews.num_rows == 5 and all(result.reviews.column("accepted").to_pylist())
    assert result.coverage.to_pylist()[0]["verified"] == 1
    # both facts matched lexically: no fact-check call was needed
    assert not any(schema_name(p) == "FactCheckReply" for p in llm_server.requests)


def test_bad_total_is_revised_with_the_critics_feedback(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    def draft(n: int) -> dict[str, Any]:
        items = [{"name": "Pickleball paddle", "price": 40.0}, {"name": "Balls 6pk", "price": 9.5}]
        return {
            "merchant": "Dick's",
            "date": "2024-03-02",
            "items": items,
            "total": 52.0 if n == 1 else 49.5,
        }

    llm_server.responder = responder(draft, evidence="Pickleball paddle")
    result = run(llm_config, tmp_path, plan_table("receipt", [PICKLEBALL]), repair_totals=False)
    assert result.stats["accepted"] == 1
    doc = result.table.to_pylist()[0]
    assert doc["rounds"] == 2 and doc["body"].endswith("TOTAL 49.50")
    first = [r for r in result.reviews.to_pylist() if r["round"] == 1]
    assert [(r["expert"], r["passed"]) for r in first] == [("format", False), ("leakage", True)]
    first_ask, revise = [
        p["messages"] for p in llm_server.requests if schema_name(p) == "ReceiptDoc"
    ]
    assert "set total to 49.50" in revise[-1]["content"]
    assert revise[-1]["content"].startswith(first_ask[-1]["content"])  # fresh ask + feedback
    assert [m["role"] for m in revise] == ["system", "user"]
    assert doc["revealed_fact_ids"] == [PICKLEBALL["fact_id"]]  # verified by the fact check


def test_a_fresh_attempt_follows_failed_rounds_and_the_cap_is_reported(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    def draft(n: int) -> dict[str, Any]:
        items = [{"name": "Pickleball paddle", "price": 40.0}, {"name": "Balls 6pk", "price": 9.5}]
        total = 49.5 if n == 3 else 52.0
        return {"merchant": "Dick's", "date": "2024-03-02", "items": items, "total": total}

    llm_server.responder = responder(draft, evidence="Pickleball paddle")
    plan = plan_table("receipt", [PICKLEBALL])
    over = {"repair_totals": False, "max_rounds": 2}
    result = run(llm_config, tmp_path, plan, max_attempts=2, **over)
    assert result.stats["accepted"] == 1 and result.stats["shortfall"] == 0
    assert result.table.to_pylist()[0]["rounds"] == 3
    asks = [p for p in llm_server.requests if schema_name(p) == "ReceiptDoc"]
    assert asks[2]["messages"] == asks[0]["messages"]  # round 3 starts over, no feedback
    assert asks[2]["seed"] != asks[0]["seed"]
    capped = run(llm_config, tmp_path / "capped", plan, max_attempts=1, **over)
    assert capped.stats["shortfall"] == 1 and capped.stats["stopped.attempt_cap"] == 1


def test_fact_check_quote_not_in_the_document_does_not_verify(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    paddle = {
        "merchant": "Dick's",
        "date": "2024-03-02",
        "items": [{"name": "Pickleball paddle", "price": 40.0}],
        "total": 40.0,
    }
    llm_server.responder = responder(lambda n: paddle)
    result = run(llm_config, tmp_path, plan_table("receipt", [PICKLEBALL]), max_rounds=2)
    assert result.stats["accepted"] == 0
    assert result.dropped.to_pylist()[0]["reason"] == "rejected by coverage"
    coverage = [r for r in result.reviews.to_pylist() if r["expert"] == "coverage"]
    assert len(coverage) == 2 and "state clearly: I play pickleball" in coverage[0]["feedback"]


def test_low_judge_scores_reject_after_max_rounds(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    llm_server.responder = responder(lambda n: GOOD_NOTE, judge_score=1)
    result = run(llm_config, tmp_path, plan_table("journal_note", [RENT]), max_rounds=3)
    assert result.table.num_rows == 0
    dropped = result.dropped.to_pylist()[0]
    assert dropped["reason"] == "rejected by faithfulness, realism"
    assert dropped["document_id"] == "doc_00000000000000aa"
    reviews = result.reviews.to_pylist()
    assert {r["round"] for r in reviews} == {1, 2, 3} and not any(r["accepted"] for r in reviews)


def test_invalid_replies_become_failed_attempts_with_reasons(
    llm_server: Any, make_llm_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    cfg = make_llm_config({"llm": {"generator": {"reply_retries": 0}}})
    llm_server.responder = lambda payload: {"content": "{not json"}
    result = run(cfg, tmp_path, plan_table("journal_note", [RENT]), max_rounds=2)
    assert result.stats["accepted"] == 0 and result.stats["generator_failures"] == 2
    rows = result.reviews.to_pylist()
    assert [r["expert"] for r in rows] == ["generator", "generator"]
    assert all(r["score"] is None and "not valid JSON" in r["error"] for r in rows)
    assert result.dropped.to_pylist()[0]["reason"].startswith("generator failed: invalid reply")


def test_rerun_is_served_from_the_cache(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    llm_server.responder = responder(lambda n: GOOD_NOTE)
    first = run(llm_config, tmp_path, plan_table("journal_note", [RENT, PICKLEBALL]))
    sent = len(llm_server.requests)
    second = run(llm_config, tmp_path, plan_table("journal_note", [RENT, PICKLEBALL]))
    assert len(llm_server.requests) == sent
    assert second.table.equals(first.table) and second.stats["cached"] == first.stats["requests"]


def test_unknown_facts_and_personas_are_dropped_before_any_call(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    bogus = {"fact_id": "fct_ffffffffffffffff", "category": "x", "statement": "x"}
    plan = pa.concat_tables(
        [
            plan_table("journal_note", [bogus]),
            plan_table(
                "journal_note",
                [RENT],
                document_id="doc_00000000000000bb",
                persona_id="per_ffffffffffffffff",
            ),
        ]
    )
    result = run(llm_config, tmp_path, plan)
    reasons = [r["reason"].split(":")[0] for r in result.dropped.to_pylist()]
    assert reasons == ["unknown_fact", "unknown_persona"] and not llm_server.requests


def test_generator_prompt_names_counterpart_facts_and_hints(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    plan = plan_table(
        "email",
        [RENT, PICKLEBALL],
        counterpart_name="Tom Reed",
        implied_fact_ids=[PICKLEBALL["fact_id"]],
    )
    run(llm_config, tmp_path, plan, max_rounds=1)
    prompt = llm_server.requests[0]["messages"][1]["content"]
    assert "The other person in it: Tom Reed." in prompt
    assert "clearly show these facts" in prompt and RENT["statement"] in prompt
    assert "only hint at these" in prompt and PICKLEBALL["statement"] in prompt
    assert "Date: 2024-03-02 09:30" in prompt and "Maria Lopez" in prompt
    assert "38" not in prompt and "nurses" not in prompt  # no age/job to leak into the text


def test_defaults_documents_config_is_valid() -> None:
    assert DocumentsConfig().per_persona >= 1


def test_leakage_expert_flags_meta_titles_and_pasted_fact_lists() -> None:
    pasted = CATALOG["journal_note"].model(
        date="2024-03-02", title="Personal Information", text=RENT["statement"]
    )
    problems = leakage_problems(pasted, ctx("journal_note", [RENT]))
    assert len(problems) == 2 and "write a real title" in problems[0]
    assert "copies the facts" in problems[1]


def test_format_expert_flags_an_email_that_greets_its_own_sender() -> None:
    mail = CATALOG["email"].model(
        sender="Maria Lopez",
        recipient="Tom Reed",
        date="2024-03-02",
        subject="Rent",
        text="Hi Maria, rent is due. Maria",
    )
    assert format_problems(mail, ctx("email")) == [
        "the email is from Maria but greets Maria; greet Tom"
    ]


def test_every_catalog_example_fits_its_schema_and_renders() -> None:
    for doc_type in CATALOG.values():
        assert doc_type.example is not None, doc_type.name
        title, body = doc_type.render_text(
            doc_type.model.model_validate(doc_type.example).model_dump()
        )
        assert title and body and "{" not in body


def test_format_expert_rejects_a_copy_of_the_catalog_example() -> None:
    example = CATALOG["receipt"].model.model_validate(CATALOG["receipt"].example)
    problems = format_problems(example, ctx("receipt"))
    assert any("copies the example" in p for p in problems)
    assert not any("copies the example" in p for p in format_problems(receipt(), ctx("receipt")))


def test_example_is_shown_only_when_configured(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    run(llm_config, tmp_path, plan_table("receipt", [RENT]), max_rounds=1)
    run(llm_config, tmp_path, plan_table("receipt", [RENT]), max_rounds=1, show_examples=True)
    hidden, shown = [
        p["messages"][1]["content"] for p in llm_server.requests if schema_name(p) == "ReceiptDoc"
    ]
    assert "Harbor Hardware" not in hidden and "Example of the format" not in hidden
    assert "Harbor Hardware" in shown and '"date": "2024-03-02"' in shown


def test_receipt_totals_are_computed_when_repair_is_on(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    items = [{"name": "Pickleball paddle", "price": 40.0}, {"name": "Balls 6pk", "price": 9.5}]
    wrong = {"merchant": "Dick's", "date": "2024-03-02", "items": items, "total": 52.0}
    llm_server.responder = responder(lambda n: wrong, evidence="Pickleball paddle")
    result = run(llm_config, tmp_path, plan_table("receipt", [PICKLEBALL]))
    doc = result.table.to_pylist()[0]
    assert doc["rounds"] == 1 and json.loads(doc["fields"])["total"] == 49.5
    assert result.stats["repaired_totals"] == 1


def journal_responder(payload: dict[str, Any]) -> dict[str, Any]:
    """A journal note that carries every fact line of the prompt, amid ordinary filler."""
    name = schema_name(payload)
    if name == "JudgeReply":
        return {"json": {"feedback": "fine", "score": 4}}
    if name == "FactCheckReply":
        return {"json": {"evidence": "", "revealed": False}}
    prompt = payload["messages"][1]["content"]
    day = prompt.split("Date: ")[1][:10]
    lines = [ln[2:].split(" (keep:")[0] for ln in prompt.splitlines() if ln.startswith("- ")]
    filler = "Long day, slept badly, the neighbors were loud again and the coffee ran out."
    quoted = [ln.split('"')[1] for ln in prompt.splitlines() if "said it)" in ln]
    text = " ".join([filler, *lines, *quoted, filler])
    return {"json": {"date": day, "title": "Tuesday", "text": text}}


def test_plan_generate_and_probe_end_to_end(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    from personafoundry.doc_plan import plan_documents
    from personafoundry.probes import build_probes
    from personafoundry.schema import conform_table

    cfg = DocumentsConfig(
        doc_types=["journal_note"], per_persona=2, cover_all=True, implied_share=0,
        distractors_per_persona=1, negative_probes=1,
    )  # fmt: skip
    plan = plan_documents(make_personas(), cfg, rng_seed=7).table
    llm_server.responder = journal_responder
    result = run(llm_config, tmp_path, plan, **cfg.model_dump())
    assert result.stats["accepted"] == plan.num_rows, result.dropped.to_pylist()
    docs, _ = conform_table(result.table, get_schema("documents"))
    planned = {r["document_id"]: r for r in plan.to_pylist()}
    for doc in result.table.to_pylist():
        assert doc["revealed_fact_ids"] == planned[doc["document_id"]]["fact_ids"]
        assert doc["is_distractor"] == (planned[doc["document_id"]]["role"] == "distractor")
    assert {c["verified"] > 0 for c in result.coverage.to_pylist()} == {True}
    probes = build_probes(make_personas(), result.table, cfg, rng_seed=7)
    conform_table(probes.table, get_schema("probes"))
    owner = {d["document_id"]: d["persona_id"] for d in docs.to_pylist()}
    for probe in probes.table.to_pylist():
        assert all(owner[d] == probe["persona_id"] for d in probe["evidence_document_ids"])
    assert probes.stats["temporal"] == 1 and probes.stats["direct"] >= 4
    assert probes.stats["negative"] == 2  # one held-out fact per persona


@pytest.mark.parametrize(
    ("text", "pasted"),
    [
        ("I live in Dallas, Texas. My daughter Sofia is 9 years old.", True),
        ("Sofia turned 9 last week, we had cake at the park. Miss Dallas sometimes!", False),
    ],
)
def test_pasted_facts_are_caught_even_when_slightly_reworded(text: str, pasted: bool) -> None:
    dallas, sofia = MARIA["facts"][3], MARIA["facts"][6]
    draft = CATALOG["journal_note"].model(date="2024-03-02", title="Sunday", text=text)
    problems = leakage_problems(draft, ctx("journal_note", [dallas, sofia]))
    assert any("copies the facts" in p for p in problems) is pasted


def test_faithfulness_judge_sees_all_thirty_facts_planned_first(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    chores = [
        ("habits", f"I water plant number {i} every {i} days.", None, None) for i in range(23)
    ]
    maria = persona(MARIA["persona_id"], "Maria Lopez", MARIA_FACTS + chores)
    assert len(maria["facts"]) == 30 and maria["facts"][1]["fact_id"] == RENT["fact_id"]
    llm_server.responder = responder(lambda n: GOOD_NOTE)
    result = run(llm_config, tmp_path, plan_table("journal_note", [RENT]), make_personas([maria]))
    assert result.stats["accepted"] == 1
    [judge] = [
        p["messages"][-1]["content"] for p in llm_server.requests
        if schema_name(p) == "JudgeReply" and "contradicts" in p["messages"][-1]["content"]
    ]  # fmt: skip
    facts = [line[2:] for line in judge.splitlines() if line.startswith("- ")]
    assert facts[0] == RENT["statement"]  # the planned fact leads
    assert len(facts) == 30 and "I water plant number 22 every 22 days." in facts


TOM_SAID = "I drive a delivery truck for FedEx."


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Tom says he drives the FedEx truck now, loves the route.", None),
        ("Coffee with Tom, we talked about his garden for an hour.", "(keep: FedEx)"),
    ],
)
def test_a_distractor_must_carry_its_planned_detail(text: str, problem: str | None) -> None:
    noise = ctx("journal_note", distractor_text=TOM_SAID, counterpart_name="Tom Reed")
    problems = distractor_problems(text, noise)
    assert (problem is None) == (not problems)
    if problem:
        [message] = problems
        assert (
            message.startswith("the document must mention what Tom Reed said")
            and problem in message
        )
    assert distractor_problems(text, ctx("journal_note")) == []  # not a distractor: no check


def test_a_distractor_without_its_detail_is_revised_by_the_coverage_expert(
    llm_server: Any, llm_config: RunConfig, tmp_path: Path
) -> None:
    small_talk = "Coffee with Tom this morning, we talked about his garden for an hour."
    detail = "Coffee with Tom this morning, he drives a delivery truck for FedEx these days."
    llm_server.responder = responder(
        lambda n: {
            "date": "2024-03-02",
            "title": "Coffee",
            "text": small_talk if n == 1 else detail,
        }
    )
    plan = plan_table(
        "journal_note", [], role="distractor", distractor_text=TOM_SAID, counterpart_name="Tom Reed"
    )
    result = run(llm_config, tmp_path, plan)
    [doc] = result.table.to_pylist()
    assert doc["is_distractor"] and doc["rounds"] == 2 and "FedEx" in doc["body"]
    first = {r["expert"]: r for r in result.reviews.to_pylist() if r["round"] == 1}
    assert not first["coverage"]["passed"] and "(keep: FedEx)" in first["coverage"]["feedback"]
