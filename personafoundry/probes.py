"""Probes for benchmark authors: questions whose answers are (or are not) in the documents.

Probes are built deterministically from the persona facts and the accepted documents'
`revealed_fact_ids` (facts the coverage expert verified), never invented by a model, so
every answer traces to a fact and every evidence ID to a document that holds it.

Decisions:
- Question form: a natural question the persona might ask its assistant, derived from
  the fact by `probe_questions.natural_question` ("I pay $1,150 a month in rent." ->
  "How much do I pay a month in rent?"). The answer is the fact's most specific span (a
  number with its unit, else a proper name, else the last content word), so scoring is
  exact-match friendly, and the span never appears in the question. A fact the grammar
  cannot turn into a clean question falls back to a fill-in-the-blank over its statement
  with a category lead ("About my money: ... What goes in the blank?"), counted in
  `stats["cloze_questions"]`.
- A direct probe whose answer span is not literally in any evidence document (an implied
  fact, verified by the coverage judge's quote) is kept, since implied facts are the hard
  probes, and counted in `stats["answer_not_stated"]`.
- `direct`: one per revealed fact not part of a change; evidence = documents whose
  `revealed_fact_ids` hold it.
- `temporal`: one per changed fact (see `doc_plan.fact_changes`) with both versions
  revealed; the answer is "<current> (earlier: <outdated>)" and the evidence lists the
  documents of both, which must be in that order on the timeline.
- `negative`: up to `negative_probes` facts per persona that no document reveals; the
  answer is "unknown" and `fact_id` names the withheld fact.
- Validation (the probe critic, deterministic): a document of the persona outside the
  evidence that lexically matches the fact is added to the evidence when it is a normal
  document (an incidental reveal, counted), and makes the probe ambiguous when it is a
  distractor (dropped). A negative probe is dropped when any document of the persona
  matches the fact or contains the blanked span. Every dropped probe has a reason.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from personafoundry.config import DocumentsConfig
from personafoundry.doc_plan import fact_changes
from personafoundry.document_critics import STOPWORDS, lexical_match, words
from personafoundry.ids import make_id, stable_hash
from personafoundry.probe_questions import natural_question
from schemas import get_schema

BLANK = "____"
UNKNOWN = "unknown"
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
NUMBER_SPAN = re.compile(
    r"\$?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|percent|years?|months?|weeks?|days?|hours?|minutes?|"
    r"miles?|pounds?|lbs|kg|dollars?))?"
)
NAME_SPAN = re.compile(r"\b[A-Z][\w'&.-]*(?:\s+(?:of |de |the |and )?[A-Z][\w'&.-]*)*")
DROPPED_SCHEMA = pa.schema(
    [("persona_id", pa.string()), ("fact_id", pa.string()), ("kind", pa.string()),
     ("reason", pa.string())]
)  # fmt: skip


@dataclass(frozen=True)
class ProbesResult:
    """Probes (`schemas/probes.py`), dropped candidate probes with a reason, counts."""

    table: pa.Table
    dropped: pa.Table
    stats: dict[str, int]


def answer_span(statement: str) -> str | None:
    """The most specific span of a statement: number (+unit), proper name, last content word."""
    text = statement.strip()
    number = NUMBER_SPAN.search(text)
    if number:
        return number.group(0).strip()
    names = [m.group(0) for m in NAME_SPAN.finditer(text) if m.start() > 0 and m.group(0) != "I"]
    if names:
        return names[0].rstrip(".")
    content = [w for w in re.findall(r"[A-Za-z][\w'-]*", text) if w.lower() not in STOPWORDS]
    content = [w for w in content if len(w) > 3]
    return content[-1] if content else None


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


def contains_span(span: str, body: str) -> bool:
    """The span's words appear consecutively in the body (case, commas, cents ignored)."""
    needle = " ".join(words(span))
    return bool(needle) and f" {needle} " in f" {' '.join(words(body))} "


@dataclass
class _Persona:
    pid: str
    facts: dict[str, dict[str, Any]]
    docs: list[dict[str, Any]]

    def revealing(self, fact_id: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if fact_id in (d["revealed_fact_ids"] or [])]


def _evidence(p: _Persona, fact: dict[str, Any]) -> tuple[list[str], str | None, int]:
    """(evidence IDs in time order, drop reason, incidental reveals added)."""
    cited = p.revealing(fact["fact_id"])
    extra = []
    for doc in p.docs:
        if doc in cited or not lexical_match(fact["statement"], doc["body"]):
            continue
        if doc.get("is_distractor"):
            return [], f"answer_in_distractor: {doc['document_id']}", 0
        extra.append(doc)
    ordered = sorted(cited + extra, key=lambda d: (d["timestamp"], d["document_id"]))
    return [d["document_id"] for d in ordered], None, len(extra)


def _probe(
    kind: str, pid: str, fact_id: str | None, q: str, a: str, ev: list[str], seed: int
) -> dict[str, Any]:
    return {
        "probe_id": make_id("prb", seed, pid, kind, fact_id),
        "persona_id": pid, "question": q, "answer": a, "fact_id": fact_id,
        "evidence_document_ids": ev, "kind": kind,
    }  # fmt: skip


def _persona_probes(
    p: _Persona, cfg: DocumentsConfig, seed: int
) -> tuple[list, list, int, dict[str, int]]:
    probes, dropped, incidental, clozes, unstated = [], [], 0, 0, 0

    def drop(fact_id: str | None, kind: str, reason: str) -> None:
        dropped.append({"persona_id": p.pid, "fact_id": fact_id, "kind": kind, "reason": reason})

    revealed = {f for d in p.docs for f in d["revealed_fact_ids"] or []} & set(p.facts)
    changes = [(o, n) for o, n in fact_changes(list(p.facts.values())) if {o, n} <= revealed]
    in_change = {x for pair in changes for x in pair}
    for fid in sorted(revealed - in_change):
        qa = ask(p.facts[fid])
        if qa is None:
            drop(fid, "direct", "no_answer_span")
            continue
        ev, reason, added = _evidence(p, p.facts[fid])
        if reason:
            drop(fid, "direct", reason)
            continue
        incidental, clozes = incidental + added, clozes + (not qa[2])
        bodies = {d["document_id"]: d["body"] for d in p.docs}
        unstated += not any(contains_span(qa[1], bodies[e]) for e in ev)
        probes.append(_probe("direct", p.pid, fid, qa[0], qa[1], ev, seed))
    for old, new in changes:
        probe, reason = _temporal(p, old, new, seed)
        if probe is None:
            drop(new, "temporal", reason or "unknown")
        else:
            probes.append(probe)
    hidden = sorted(set(p.facts) - revealed)
    rng = random.Random(int(stable_hash([seed, "negatives", p.pid]), 16))
    for fid in rng.sample(hidden, len(hidden)):
        if sum(pr["kind"] == "negative" for pr in probes) >= cfg.negative_probes:
            break
        qa = ask(p.facts[fid])
        if qa is None:
            drop(fid, "negative", "no_answer_span")
            continue
        leak = [
            d["document_id"]
            for d in p.docs
            if lexical_match(p.facts[fid]["statement"], d["body"])
            or contains_span(qa[1], d["body"])
        ]
        if leak:
            drop(fid, "negative", f"negative_answer_found: {leak[0]}")
            continue
        clozes += not qa[2]
        probes.append(_probe("negative", p.pid, fid, qa[0], UNKNOWN, [], seed))
    return probes, dropped, incidental, {"cloze_questions": clozes, "answer_not_stated": unstated}


def _temporal(
    p: _Persona, old: str, new: str, seed: int
) -> tuple[dict[str, Any] | None, str | None]:
    now, before = ask(p.facts[new]), ask(p.facts[old])
    if now is None or before is None:
        return None, "no_answer_span"
    ev_new, reason_new, _ = _evidence(p, p.facts[new])
    ev_old, reason_old, _ = _evidence(p, p.facts[old])
    if reason_new or reason_old:
        return None, reason_new or reason_old
    stamp = {d["document_id"]: d["timestamp"] for d in p.docs}
    if max(stamp[d] for d in ev_old) >= min(stamp[d] for d in ev_new):
        return None, "timeline_inconsistent: an outdated document is not older than a current one"
    if now[2]:
        question = now[0].rstrip("?") + " now, and what was it before?"
    else:
        question = now[0].replace(
            "What goes in the blank?", "What goes in the blank now, and before?"
        )
    answer = f"{now[1]} (earlier: {before[1]})"
    return _probe("temporal", p.pid, new, question, answer, ev_old + ev_new, seed), None


def build_probes(
    personas: pa.Table, documents: pa.Table, cfg: DocumentsConfig, *, rng_seed: int
) -> ProbesResult:
    """Direct, temporal and negative probes per persona, validated against the documents.

    Input columns: `schemas/personas.py` (`persona_id`, `facts`); `schemas/documents.py`
    (+ optional `is_distractor`).
    Output columns: `schemas/probes.py`; `dropped`: `persona_id`, `fact_id`, `kind`, `reason`.
    """
    cols = [c for c in ("document_id", "persona_id", "body", "timestamp", "revealed_fact_ids",
                        "is_distractor") if c in documents.column_names]  # fmt: skip
    docs_by: dict[str, list[dict[str, Any]]] = {}
    for doc in documents.select(cols).to_pylist():
        docs_by.setdefault(doc["persona_id"], []).append(doc)
    probes, dropped, incidental = [], [], 0
    counts = {"cloze_questions": 0, "answer_not_stated": 0}
    for row in personas.select(["persona_id", "facts"]).to_pylist():
        facts = {f["fact_id"]: f for f in row["facts"] or [] if f}
        p = _Persona(row["persona_id"], facts, docs_by.get(row["persona_id"], []))
        p_probes, p_dropped, added, p_counts = _persona_probes(p, cfg, rng_seed)
        probes += p_probes
        dropped += p_dropped
        incidental += added
        counts = {k: v + p_counts[k] for k, v in counts.items()}
    stats = {
        kind: sum(pr["kind"] == kind for pr in probes)
        for kind in ("direct", "temporal", "negative")
    }
    stats |= {"dropped": len(dropped), "incidental_evidence": incidental, **counts}
    return ProbesResult(
        pa.Table.from_pylist(probes, schema=get_schema("probes").arrow_schema()),
        pa.Table.from_pylist(dropped, schema=DROPPED_SCHEMA),
        stats,
    )
