"""Probes: direct, temporal and negative, validated against the documents that hold them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from test_doc_plan import make_personas

from personafoundry.config import DocumentsConfig
from personafoundry.doc_plan import PLAN_SCHEMA
from personafoundry.documents import output_schema
from personafoundry.probe_questions import natural_question
from personafoundry.probes import REASONS, answer_span, ask, build_probes, cloze
from schemas import get_schema

PERSONAS = make_personas()
MARIA = PERSONAS.to_pylist()[0]
PID = MARIA["persona_id"]
F = {i: f["fact_id"] for i, f in enumerate(MARIA["facts"])}
# 0 nurse at Mercy Hospital, 1 rent $1,150, 2 pickleball Saturday, 3 lived in Dallas (old),
# 4 lives in Tulsa (new), 5 penicillin allergy, 6 daughter Sofia is 9


def doc(n: int, body: str, revealed: list[str], month: int, **extra: Any) -> dict[str, Any]:
    return {
        "document_id": f"doc_{n:016x}", "persona_id": PID, "doc_type": "journal_note",
        "title": "t", "body": body, "timestamp": datetime(2024, month, 1, tzinfo=UTC),
        "revealed_fact_ids": revealed, "critic_scores": [], "rounds": 1, "model": "m",
        "prompt_version": "v", "fields": "{}", "is_distractor": False, "counterpart_id": None,
        **extra,
    }  # fmt: skip


def documents(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=output_schema())


BASE = (
    doc(1, "Moving boxes everywhere. Last week in Dallas before the move.", [F[3]], 1),
    doc(2, "Rent $1,150 paid. Pickleball Saturday morning again!", [F[1], F[2]], 3),
    doc(3, "First month in Tulsa. The new place in Tulsa, Oklahoma is quiet.", [F[4]], 5),
)


def by_kind(probes: pa.Table, kind: str) -> list[dict[str, Any]]:
    return [p for p in probes.to_pylist() if p["kind"] == kind]


@pytest.mark.parametrize(
    ("statement", "span"),
    [
        ("I pay $1,150 a month in rent.", "$1,150"),
        ("My daughter Sofia is 9 years old.", "9 years"),
        ("I work as a night-shift nurse at Mercy Hospital in Tulsa.", "Mercy Hospital"),
        ("I am allergic to penicillin.", "penicillin"),
        ("I.", None),
    ],
)
def test_answer_span_prefers_numbers_then_names_then_last_content_word(
    statement: str, span: str | None
) -> None:
    assert answer_span(statement) == span


def test_cloze_blanks_the_answer_out_of_the_question() -> None:
    question, answer = cloze({"statement": "I pay $1,150 a month in rent.", "category": "finance"})
    assert question == 'About my money: "I pay ____ a month in rent." What goes in the blank?'
    assert answer == "$1,150" and answer not in question


@pytest.mark.parametrize(
    ("statement", "question"),
    [
        ("I pay $1,150 a month in rent.", "How much do I pay a month in rent?"),
        ("My daughter Sofia is 9 years old.", "How old is my daughter Sofia?"),
        ("I work as a nurse at Mercy Hospital in Tulsa.", "Where do I work as a nurse in Tulsa?"),
        ("I am allergic to penicillin.", "What am I allergic to?"),
        ("I have a gray cat named Pepper.", "What is my gray cat's name?"),
        ("I've lived in Tulsa since 2019.", "Since when have I lived in Tulsa?"),
        ("I moved to Ohio from El Paso in 2009.", "In what year did I move to Ohio from El Paso?"),
        ("My son Kai plays volleyball at Highland Middle School.", "What is my son's name?"),
        ("I had knee surgery last spring.", "When did I have knee surgery?"),
        ("I have 3 cats.", "How many cats do I have?"),
        ("I worked as a machinist for 38 years.", "How long did I work as a machinist?"),
        ("I am studying at night to become an electrician.", "What am I studying at night to become?"),
        ("I restore old Harley-Davidson motorcycles in my garage.", "What do I restore in my garage?"),
        ("I run a small bakery called Sunrise Bread in Tucson.",
         "What is the name of the small bakery I run?"),
        ("My favorite dish is the pierogi at Bea's Kitchen.", None),  # no clean inversion
    ],
)  # fmt: skip
def test_natural_question_asks_for_the_answer_span(statement: str, question: str | None) -> None:
    assert natural_question(statement, answer_span(statement)) == question


def test_every_question_leaves_the_answer_out_and_falls_back_to_the_cloze() -> None:
    facts = [f for row in PERSONAS.to_pylist() for f in row["facts"]]
    facts.append({"category": "family", "statement": "I have two sons, Diego and Mateo, who ski."})
    for fact in facts:
        question, answer, natural = ask(fact)
        assert answer == answer_span(fact["statement"])
        assert answer.lower() not in question.lower() or not natural
        assert question.endswith("?")
        assert natural == (natural_question(fact["statement"], answer) is not None)
    assert not ask(facts[-1])[2] and "What goes in the blank?" in ask(facts[-1])[0]


def test_direct_probes_cite_the_documents_that_state_each_answer() -> None:
    result = build_probes(PERSONAS, documents(*BASE), DocumentsConfig(), rng_seed=1)
    direct = {p["fact_id"]: p for p in by_kind(result.table, "direct")}
    assert set(direct) == {F[1], F[2]}  # Dallas/Tulsa are a change: a temporal probe instead
    assert direct[F[1]]["answer"] == "$1,150" and direct[F[1]]["support"] == "stated"
    assert direct[F[1]]["question"] == "How much do I pay a month in rent?"
    assert direct[F[1]]["evidence_document_ids"] == ["doc_0000000000000002"]
    assert direct[F[1]]["outdated_answer"] is None and direct[F[1]]["outdated_fact_id"] is None
    assert result.stats["stated"] == 3 and result.stats["implied"] == 0
    assert result.stats["cloze_questions"] == 0
    assert result.table.schema.equals(get_schema("probes").arrow_schema(), check_metadata=False)
    again = build_probes(PERSONAS, documents(*BASE), DocumentsConfig(), rng_seed=1)
    assert again.table.equals(result.table)


def test_temporal_probe_keeps_current_and_outdated_answers_in_their_own_columns() -> None:
    result = build_probes(PERSONAS, documents(*BASE), DocumentsConfig(), rng_seed=1)
    [temporal] = by_kind(result.table, "temporal")
    assert temporal["question"] == "Where do I live now, and what was it before?"
    assert (temporal["fact_id"], temporal["answer"]) == (F[4], "Tulsa")
    assert temporal["evidence_document_ids"] == ["doc_0000000000000003"]
    assert (temporal["outdated_fact_id"], temporal["outdated_answer"]) == (F[3], "Dallas")
    assert temporal["outdated_evidence_document_ids"] == ["doc_0000000000000001"]
    assert temporal["support"] == "stated"


def test_temporal_probe_is_dropped_when_the_timeline_disagrees() -> None:
    late = doc(1, "Last week in Dallas before the move.", [F[3]], 9)  # after the Tulsa note
    result = build_probes(PERSONAS, documents(late, *BASE[1:]), DocumentsConfig(), rng_seed=1)
    assert not by_kind(result.table, "temporal")
    [row] = [r for r in result.dropped.to_pylist() if r["kind"] == "temporal"]
    assert row["fact_id"] == F[4] and row["reason"] == "timeline_inconsistent"
    assert row["detail"] == "outdated doc_0000000000000001 is not older than doc_0000000000000003"


def test_temporal_probe_needs_both_answers_stated() -> None:
    vague = doc(1, "Packing up the old Texas apartment, last week before the move.", [F[3]], 1)
    result = build_probes(PERSONAS, documents(vague, *BASE[1:]), DocumentsConfig(), rng_seed=1)
    assert not by_kind(result.table, "temporal")
    [row] = [r for r in result.dropped.to_pylist() if r["kind"] == "temporal"]
    assert row["reason"] == "answer_not_supported" and "'Dallas'" in row["detail"]


def test_negative_probes_answer_unknown_for_facts_no_document_reveals() -> None:
    cfg = DocumentsConfig(negative_probes=5)
    result = build_probes(PERSONAS, documents(*BASE), cfg, rng_seed=1)
    negatives = by_kind(result.table, "negative")
    maria = [p for p in negatives if p["persona_id"] == PID]
    assert {p["fact_id"] for p in maria} == {F[0], F[5], F[6]}
    assert all(p["answer"] == "unknown" and p["evidence_document_ids"] == [] for p in negatives)
    assert all(p["support"] is None and p["outdated_answer"] is None for p in negatives)
    capped = build_probes(
        PERSONAS, documents(*BASE), DocumentsConfig(negative_probes=1), rng_seed=1
    )
    assert len([p for p in by_kind(capped.table, "negative") if p["persona_id"] == PID]) == 1


@pytest.mark.parametrize(
    ("body", "leaked_fact"),
    [
        ("Pharmacy said no penicillin for me, ever.", 5),  # the answer span itself
        ("Sofia turned 9 today, cake at the park!", 6),  # key token "9" next to "Sofia"
        ("Night shift again, the hospital in Tulsa was packed, nurses everywhere.", 0),  # match
        ("Alarm at 9am, coffee, then errands.", None),  # a 9 alone gives nothing away
    ],
)
def test_negative_probe_is_dropped_when_a_document_gives_the_fact_away(
    body: str, leaked_fact: int | None
) -> None:
    leaky = doc(4, body, [], 6)
    cfg = DocumentsConfig(negative_probes=5)
    result = build_probes(PERSONAS, documents(*BASE, leaky), cfg, rng_seed=1)
    leaked = [r for r in result.dropped.to_pylist() if r["reason"] == "negative_answer_leaked"]
    negatives = {p["fact_id"] for p in by_kind(result.table, "negative")}
    if leaked_fact is None:
        assert not leaked and {F[0], F[5], F[6]} <= negatives
        return
    [row] = leaked
    assert row["fact_id"] == F[leaked_fact] and row["detail"] == "doc_0000000000000004"
    assert F[leaked_fact] not in negatives and result.stats["dropped.negative_answer_leaked"] == 1


def test_a_fact_planned_in_an_accepted_document_is_never_a_negative() -> None:
    hint = doc(4, "Double-checked the meds list at the pharmacy again.", [], 6)
    plan = plan_rows((hint, [F[5]], [F[5]]), (BASE[1], [F[1], F[2]], []))
    cfg = DocumentsConfig(negative_probes=5)
    result = build_probes(PERSONAS, documents(*BASE, hint), cfg, rng_seed=1, plan=plan)
    assert F[5] not in {p["fact_id"] for p in by_kind(result.table, "negative")}
    [row] = [r for r in result.dropped.to_pylist() if r["fact_id"] == F[5]]
    assert row["reason"] == "negative_answer_leaked"
    assert row["detail"].startswith("planned in doc_0000000000000004")


def test_an_incidental_reveal_that_states_the_answer_joins_the_evidence() -> None:
    extra = doc(5, "Budget: rent 1150 each month, I pay it on the 1st.", [], 4)
    result = build_probes(PERSONAS, documents(*BASE, extra), DocumentsConfig(), rng_seed=1)
    [rent] = [p for p in by_kind(result.table, "direct") if p["fact_id"] == F[1]]
    assert rent["evidence_document_ids"] == ["doc_0000000000000002", "doc_0000000000000005"]
    assert result.stats["incidental_evidence"] == 1


def test_documents_that_reveal_the_fact_without_its_answer_are_not_cited() -> None:
    mercy = doc(7, "Double shift at Mercy Hospital, feet are done.", [F[0]], 2)
    vague = doc(8, "Night shift as a nurse, the hospital in Tulsa was chaos.", [F[0]], 6)
    other = doc(
        9, "Another night shift at the hospital in Tulsa as a nurse, work work work.", [], 7
    )
    result = build_probes(
        PERSONAS, documents(*BASE, mercy, vague, other), DocumentsConfig(), rng_seed=1
    )
    [job] = [p for p in by_kind(result.table, "direct") if p["fact_id"] == F[0]]
    assert job["answer"] == "Mercy Hospital" and job["support"] == "stated"
    assert job["evidence_document_ids"] == ["doc_0000000000000007"]
    assert result.stats["incidental_evidence"] == 0


def test_an_answer_no_cited_document_states_is_dropped_as_not_supported() -> None:
    vague = doc(8, "Night shift as a nurse, the hospital in Tulsa was chaos.", [F[0]], 6)
    result = build_probes(PERSONAS, documents(*BASE, vague), DocumentsConfig(), rng_seed=1)
    assert F[0] not in {p["fact_id"] for p in result.table.to_pylist()}
    [row] = [r for r in result.dropped.to_pylist() if r["fact_id"] == F[0]]
    assert (row["kind"], row["reason"]) == ("direct", "answer_not_supported")
    assert (
        row["detail"]
        == "'Mercy Hospital' is not stated in doc_0000000000000008 nor planned implied"
    )
    assert result.stats["dropped.answer_not_supported"] == 1


def test_a_distractor_that_holds_the_answer_makes_the_probe_ambiguous() -> None:
    noise = doc(6, "Tom: I play pickleball every Saturday morning too!", [], 4, is_distractor=True)
    result = build_probes(PERSONAS, documents(*BASE, noise), DocumentsConfig(), rng_seed=1)
    assert F[2] not in {p["fact_id"] for p in by_kind(result.table, "direct")}
    [row] = [r for r in result.dropped.to_pylist() if r["fact_id"] == F[2]]
    assert (row["reason"], row["detail"]) == ("answer_in_distractor", "doc_0000000000000006")


def test_every_probe_fact_and_evidence_belongs_to_its_persona() -> None:
    result = build_probes(
        PERSONAS, documents(*BASE), DocumentsConfig(negative_probes=3), rng_seed=2
    )
    facts = {(p["persona_id"], f["fact_id"]) for p in PERSONAS.to_pylist() for f in p["facts"]}
    owners = {d["document_id"]: d["persona_id"] for d in BASE}
    for probe in result.table.to_pylist():
        assert (probe["persona_id"], probe["fact_id"]) in facts
        cited = probe["evidence_document_ids"] + (probe["outdated_evidence_document_ids"] or [])
        assert all(owners[d] == probe["persona_id"] for d in cited)
    assert len(set(result.table.column("probe_id").to_pylist())) == result.table.num_rows
    assert result.stats["direct"] + result.stats["temporal"] + result.stats["negative"] == (
        result.table.num_rows
    )


IMPLIED = doc(5, "Out on the courts with my paddle again, best part of the week.", [F[2]], 4)
RENT_ONLY = doc(2, "Rent $1,150 paid.", [F[1]], 3)


def test_an_implied_fact_is_kept_and_labelled_only_when_the_plan_hinted_it() -> None:
    docs = documents(BASE[0], RENT_ONLY, BASE[2], IMPLIED)
    plan = plan_rows((RENT_ONLY, [F[1]], []), (IMPLIED, [F[2]], [F[2]]))
    result = build_probes(PERSONAS, docs, DocumentsConfig(), rng_seed=1, plan=plan)
    direct = {p["fact_id"]: p for p in by_kind(result.table, "direct")}
    assert direct[F[2]]["support"] == "implied" and direct[F[1]]["support"] == "stated"
    assert direct[F[2]]["evidence_document_ids"] == ["doc_0000000000000005"]
    assert result.stats["implied"] == 1
    unplanned = build_probes(PERSONAS, docs, DocumentsConfig(), rng_seed=1)  # no plan: no hint
    assert F[2] not in {p["fact_id"] for p in unplanned.table.to_pylist()}
    assert unplanned.stats["dropped.answer_not_supported"] == 1
    explicit = plan_rows((RENT_ONLY, [F[1]], []), (IMPLIED, [F[2]], []))  # planned as stated
    lost = build_probes(PERSONAS, docs, DocumentsConfig(), rng_seed=1, plan=explicit)
    assert [r["reason"] for r in lost.dropped.to_pylist() if r["fact_id"] == F[2]] == [
        "answer_not_supported"
    ]


def test_every_dropped_probe_has_a_known_reason_and_is_counted() -> None:
    noise = doc(6, "Tom: I play pickleball every Saturday morning too!", [], 4, is_distractor=True)
    late = doc(1, "Last week in Dallas before the move.", [F[3]], 9)
    leaky = doc(4, "Pharmacy said no penicillin for me, ever.", [], 6)
    docs = documents(late, *BASE[1:], noise, leaky, IMPLIED)
    result = build_probes(PERSONAS, docs, DocumentsConfig(negative_probes=5), rng_seed=1)
    dropped = result.dropped.to_pylist()
    assert {r["reason"] for r in dropped} == {
        "answer_in_distractor", "timeline_inconsistent", "negative_answer_leaked"
    }  # fmt: skip
    assert all(r["reason"] in REASONS and r["detail"] for r in dropped)
    assert (
        result.stats["dropped"]
        == len(dropped)
        == sum(result.stats[f"dropped.{r}"] for r in REASONS)
    )


def plan_rows(*rows: tuple[dict[str, Any], list[str], list[str]]) -> pa.Table:
    """Plan rows (`doc_plan.PLAN_SCHEMA`) for documents: (document, fact_ids, implied ids)."""
    return pa.Table.from_pylist(
        [
            {"document_id": d["document_id"], "persona_id": d["persona_id"],
             "doc_type": d["doc_type"], "role": "facts", "seq": i, "timestamp": d["timestamp"],
             "fact_ids": facts, "implied_fact_ids": implied, "counterpart_id": None,
             "counterpart_name": None, "distractor_fact_id": None, "distractor_text": None}
            for i, (d, facts, implied) in enumerate(rows)
        ],
        schema=PLAN_SCHEMA,
    )  # fmt: skip
