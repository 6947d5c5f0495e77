"""Probes for benchmark authors: questions whose answers are (or are not) in the documents.

Probes are built deterministically from the persona facts and the accepted documents'
`revealed_fact_ids` (facts the coverage expert verified), never invented by a model, so
every answer traces to a fact and every evidence ID to a document that holds it.

Decisions:
- Question form: a natural question the persona might ask its assistant, derived from
  the fact by `probe_questions.natural_question` ("I pay $1,150 a month in rent." ->
  "How much do I pay a month in rent?"). The answer is the fact's most specific span
  (`fact_text.answer_span`), so scoring is exact-match friendly, and the span never
  appears in the question. A fact the grammar cannot turn into a clean question falls
  back to a fill-in-the-blank over its statement with a category lead ("About my money:
  ... What goes in the blank?"), counted in `stats["cloze_questions"]`.
- `direct`: one per revealed fact not part of a change. `temporal`: one per changed fact
  (see `doc_plan.fact_changes`) with both versions revealed: `answer`, `fact_id` and
  `evidence_document_ids` hold the current value, `outdated_answer`, `outdated_fact_id`
  and `outdated_evidence_document_ids` the earlier one, whose documents must all be older
  than the current ones. `negative`: up to `negative_probes` facts per persona that no
  document reveals; the answer is "unknown" and `fact_id` names the withheld fact.
- Validation (the probe critic, deterministic). A probe's evidence is the documents that
  state its answer (`fact_text.states_answer`: the span, or its key tokens), and
  `support` says how the evidence backs the answer:
  - `stated`: at least one cited document states the answer; cited documents that
    reveal the fact without its answer are not cited (they cannot answer the question).
  - `implied`: no document states the answer, but the plan asked for the fact to be
    only hinted (`implied_fact_ids`) and the coverage judge verified the hint with a
    quote from the document. These are the hard probes a benchmark wants, so they are
    kept, labelled, and cite the documents that reveal the fact. Only the plan can tell
    an intended hint from a document that lost the answer: without `plan`, no probe is
    `implied`.
  - otherwise the probe is dropped with `answer_not_supported`. Temporal probes need
    both answers stated.
  A normal document of the persona outside the revealing ones that matches the fact and
  states the answer joins the evidence (an incidental reveal, counted); a distractor that
  matches the fact makes the probe ambiguous (`answer_in_distractor`). A negative probe
  is dropped (`negative_answer_leaked`) when any document of the persona gives the fact
  away (`fact_text.mentions_fact`) or, with the plan, was planned to show it (a hint the
  coverage judge did not verify may still be there).
- Every dropped candidate is a row of `ProbesResult.dropped` with a `reason` code and a
  `detail` (which document, which span), and is counted in `stats["dropped.<reason>"]`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from personafoundry.config import DocumentsConfig
from personafoundry.doc_plan import fact_changes
from personafoundry.fact_text import answer_span, lexical_match, mentions_fact, states_answer
from personafoundry.ids import make_id, stable_hash
from personafoundry.probe_questions import natural_question
from schemas import get_schema

BLANK = "____"
UNKNOWN = "unknown"
STATED, IMPLIED = "stated", "implied"
LEADS = {
    "work": "About my job:",
    "finance": "About my money:",
    "health": "About my health:",
    "family": "About my family:",
    "relationships": "About the people in my life:",
    "hobbies": "About my free time:",
    "location": "About where I live:",
    "habits": "About my routines:",
    "preferences": "About what I like:",
    "history": "About my past:",
}
DROPPED_SCHEMA = pa.schema(
    [("persona_id", pa.string()), ("fact_id", pa.string()), ("kind", pa.string()),
     ("reason", pa.string()), ("detail", pa.string())]
)  # fmt: skip
REASONS = (
    "no_answer_span",
    "answer_in_distractor",
    "answer_not_supported",
    "timeline_inconsistent",
    "negative_answer_leaked",
)


@dataclass(frozen=True)
class ProbesResult:
    """Probes (`schemas/probes.py`), dropped candidate probes with a reason, counts."""

    table: pa.Table
    dropped: pa.Table
    stats: dict[str, int]


class _Dropped(Exception):
    """A candidate probe fails validation: `reason` is one of `REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def cloze(fact: dict[str, Any]) -> tuple[str, str] | None:
    """(question, answer) for one fact, or None when no span can be blanked cleanly."""
    statement = (fact.get("statement") or "").strip()
    span = answer_span(statement)
    if not span:
        return None
    masked = statement.replace(span, BLANK, 1)
    if span.lower() in masked.lower():
        return None
    lead = LEADS.get(fact.get("category") or "", f"About my {fact.get('category') or 'life'}:")
    return f'{lead} "{masked}" What goes in the blank?', span


def ask(fact: dict[str, Any]) -> tuple[str, str, bool] | None:
    """(question, answer, is_natural) for one fact: a natural question, else the cloze."""
    statement = (fact.get("statement") or "").strip()
    span = answer_span(statement)
    if span:
        question = natural_question(statement, span)
        if question:
            return question, span, True
    qa = cloze(fact)
    return (qa[0], qa[1], False) if qa else None


def _asked(fact: dict[str, Any]) -> tuple[str, str, bool]:
    qa = ask(fact)
    if qa is None:
        raise _Dropped("no_answer_span", f"no answer span in {fact['statement']!r}")
    return qa


@dataclass
class _Persona:
    pid: str
    facts: dict[str, dict[str, Any]]
    docs: list[dict[str, Any]]
    implied: set[str] = field(default_factory=set)  # facts the plan asked only to hint at
    planned: dict[str, list[str]] = field(default_factory=dict)  # fact -> documents planned

    def revealing(self, fact_id: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if fact_id in (d["revealed_fact_ids"] or [])]


def _in_time_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(docs, key=lambda d: (d["timestamp"] is None, d["timestamp"], d["document_id"]))


def _evidence(p: _Persona, fact: dict[str, Any], span: str) -> tuple[list[dict], str, int]:
    """(evidence documents in time order, support, incidental reveals cited); see module doc."""
    cited = p.revealing(fact["fact_id"])
    cited_ids = {d["document_id"] for d in cited}
    extra = []
    for doc in p.docs:
        if doc["document_id"] in cited_ids or not lexical_match(fact["statement"], doc["body"]):
            continue
        if doc.get("is_distractor"):
            raise _Dropped("answer_in_distractor", doc["document_id"])
        extra.append(doc)
    stating = [d for d in cited + extra if states_answer(span, d["body"])]
    if stating:
        stated_ids = {d["document_id"] for d in stating}
        return _in_time_order(stating), STATED, sum(d["document_id"] in stated_ids for d in extra)
    if fact["fact_id"] in p.implied:
        return _in_time_order(cited), IMPLIED, 0
    ids = ", ".join(d["document_id"] for d in cited)
    raise _Dropped("answer_not_supported", f"{span!r} is not stated in {ids} nor planned implied")


def _probe(kind: str, p: _Persona, fact_id: str | None, question: str, seed: int,
           **values: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "probe_id": make_id("prb", seed, p.pid, kind, fact_id), "persona_id": p.pid,
        "question": question, "fact_id": fact_id, "kind": kind, "outdated_answer": None,
        "outdated_fact_id": None, "outdated_evidence_document_ids": None, "support": None,
        **values,
    }  # fmt: skip


def _direct(p: _Persona, fid: str, seed: int, counts: dict[str, int]) -> dict[str, Any]:
    question, span, natural = _asked(p.facts[fid])
    docs, support, added = _evidence(p, p.facts[fid], span)
    counts["incidental_evidence"] += added
    counts["cloze_questions"] += not natural
    ids = [d["document_id"] for d in docs]
    return _probe("direct", p, fid, question, seed, answer=span, evidence_document_ids=ids,
                  support=support)  # fmt: skip


def _temporal(p: _Persona, old: str, new: str, seed: int, counts: dict[str, int]) -> dict:
    (question, now, natural), (_, before, _) = _asked(p.facts[new]), _asked(p.facts[old])
    ev_new, support_new, _ = _evidence(p, p.facts[new], now)
    ev_old, support_old, _ = _evidence(p, p.facts[old], before)
    if IMPLIED in (support_new, support_old):
        raise _Dropped("answer_not_supported", "both answers of a change must be stated")
    if any(d["timestamp"] is None for d in ev_old + ev_new):
        raise _Dropped("timeline_inconsistent", "an evidence document has no timestamp")
    if ev_old[-1]["timestamp"] >= ev_new[0]["timestamp"]:
        detail = (
            f"outdated {ev_old[-1]['document_id']} is not older than {ev_new[0]['document_id']}"
        )
        raise _Dropped("timeline_inconsistent", detail)
    if natural:
        question = question.rstrip("?") + " now, and what was it before?"
    else:
        question = question.replace(
            "What goes in the blank?", "What goes in the blank now, and before?"
        )
    counts["cloze_questions"] += not natural
    return _probe(
        "temporal", p, new, question, seed, answer=now,
        evidence_document_ids=[d["document_id"] for d in ev_new], support=STATED,
        outdated_answer=before, outdated_fact_id=old,
        outdated_evidence_document_ids=[d["document_id"] for d in ev_old],
    )  # fmt: skip


def _negative(p: _Persona, fid: str, seed: int, counts: dict[str, int]) -> dict[str, Any]:
    fact = p.facts[fid]
    question, span, natural = _asked(fact)
    if p.planned.get(fid):
        detail = f"planned in {', '.join(p.planned[fid])} (a hint may be there, not verified)"
        raise _Dropped("negative_answer_leaked", detail)
    for doc in p.docs:
        if mentions_fact(fact["statement"], span, doc["body"]):
            raise _Dropped("negative_answer_leaked", doc["document_id"])
    counts["cloze_questions"] += not natural
    return _probe("negative", p, fid, question, seed, answer=UNKNOWN, evidence_document_ids=[])


def _persona_probes(
    p: _Persona, cfg: DocumentsConfig, seed: int, counts: dict[str, int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    probes: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []

    def attempt(kind: str, fid: str, build: Any, *args: Any) -> None:
        try:
            probes.append(build(p, *args, seed, counts))
        except _Dropped as drop:
            dropped.append({"persona_id": p.pid, "fact_id": fid, "kind": kind,
                            "reason": drop.reason, "detail": drop.detail})  # fmt: skip

    revealed = {f for d in p.docs for f in d["revealed_fact_ids"] or []} & set(p.facts)
    changes = [(o, n) for o, n in fact_changes(list(p.facts.values())) if {o, n} <= revealed]
    in_change = {x for pair in changes for x in pair}
    for fid in sorted(revealed - in_change):
        attempt("direct", fid, _direct, fid)
    for old, new in changes:
        attempt("temporal", new, _temporal, old, new)
    hidden = sorted(set(p.facts) - revealed)
    rng = random.Random(int(stable_hash([seed, "negatives", p.pid]), 16))
    for fid in rng.sample(hidden, len(hidden)):
        if sum(pr["kind"] == "negative" for pr in probes) >= cfg.negative_probes:
            break
        attempt("negative", fid, _negative, fid)
    return probes, dropped


def _plan_by_persona(
    plan: pa.Table | None, accepted: set[str]
) -> dict[str, tuple[set[str], dict[str, list[str]]]]:
    """persona -> (implied fact ids, fact -> accepted documents planned to show it)."""
    out: dict[str, tuple[set[str], dict[str, list[str]]]] = {}
    if plan is None:
        return out
    cols = ["document_id", "persona_id", "fact_ids", "implied_fact_ids"]
    for row in plan.select(cols).to_pylist():
        if row["document_id"] not in accepted:
            continue
        implied, planned = out.setdefault(row["persona_id"], (set(), {}))
        implied.update(row["implied_fact_ids"] or [])
        for fid in row["fact_ids"] or []:
            planned.setdefault(fid, []).append(row["document_id"])
    return out


def build_probes(
    personas: pa.Table,
    documents: pa.Table,
    cfg: DocumentsConfig,
    *,
    rng_seed: int,
    plan: pa.Table | None = None,
) -> ProbesResult:
    """Direct, temporal and negative probes per persona, validated against the documents.

    Input columns: `schemas/personas.py` (`persona_id`, `facts`); `schemas/documents.py`
    (+ optional `is_distractor`); `plan`: `doc_plan.PLAN_SCHEMA` (`document_id`,
    `persona_id`, `fact_ids`, `implied_fact_ids`), which tells an intended hint from a
    lost answer (see the module docstring); without it no probe is `implied`.
    Output columns: `schemas/probes.py`; `dropped`: `DROPPED_SCHEMA` (`reason` in `REASONS`).
    """
    cols = [c for c in ("document_id", "persona_id", "body", "timestamp", "revealed_fact_ids",
                        "is_distractor") if c in documents.column_names]  # fmt: skip
    docs_by: dict[str, list[dict[str, Any]]] = {}
    for doc in documents.select(cols).to_pylist():
        docs_by.setdefault(doc["persona_id"], []).append(doc)
    plans = _plan_by_persona(plan, set(documents.column("document_id").to_pylist()))
    probes, dropped = [], []
    counts = {"cloze_questions": 0, "incidental_evidence": 0}
    for row in personas.select(["persona_id", "facts"]).to_pylist():
        pid = row["persona_id"]
        facts = {f["fact_id"]: f for f in row["facts"] or [] if f}
        p = _Persona(pid, facts, docs_by.get(pid, []), *plans.get(pid, (set(), {})))
        p_probes, p_dropped = _persona_probes(p, cfg, rng_seed, counts)
        probes += p_probes
        dropped += p_dropped
    stats = {k: sum(pr["kind"] == k for pr in probes) for k in ("direct", "temporal", "negative")}
    stats |= {s: sum(pr["support"] == s for pr in probes) for s in (STATED, IMPLIED)}
    stats |= {"dropped": len(dropped), **counts}
    stats |= {f"dropped.{r}": sum(d["reason"] == r for d in dropped) for r in REASONS}
    return ProbesResult(
        pa.Table.from_pylist(probes, schema=get_schema("probes").arrow_schema()),
        pa.Table.from_pylist(dropped, schema=DROPPED_SCHEMA),
        stats,
    )
