"""Write planned private documents with the generator-critic loop.

Each planned document (`personafoundry.doc_plan`) goes through `critic.refine`: the
generator answers in its type's catalog schema (structured output), the experts of
`personafoundry.document_critics` judge it, failed verdicts are fed back, up to
`max_rounds` attempts. Accepted documents are rendered to text with the catalog template.

Decisions:
- `revealed_fact_ids` lists only the planned facts the coverage expert verified (lexical
  match or an LLM check with evidence found in the text), never the plan itself, so
  probes built on it point at documents that really hold the answer.
- Besides the contract columns, rows carry `fields` (the structured reply as JSON),
  `is_distractor` and `counterpart_id` (the persona named as sender/recipient), so
  researchers can filter noise and follow links between people.
- Revisions are fresh requests with the critics' feedback appended (see `_generator`).
- The catalog's example is off by default (`show_examples`): the 0.5B model copied it
  verbatim (merchant, items and all); the format expert rejects copies when it is on.
- Per-request seeds derive from the run seed, the document ID and the round, so a rerun
  hits the response cache and pays nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from personafoundry.config import DocumentsConfig
from personafoundry.critic import LoopOutcome, LoopSpec, refine, score_structs
from personafoundry.doc_catalog import DocType, Prompt, load_catalog, load_prompts
from personafoundry.document_critics import DocContext, build_experts
from personafoundry.ids import stable_hash
from personafoundry.llm import LlmClient, LlmResult
from personafoundry.probes import answer_span
from schemas import get_schema

log = logging.getLogger(__name__)
EXTRA_FIELDS = (
    pa.field("fields", pa.string(), metadata={"description": "the structured reply, JSON"}),
    pa.field("is_distractor", pa.bool_(), metadata={"description": "noise document"}),
    pa.field("counterpart_id", pa.string(), metadata={"description": "persona named in it"}),
)
DATE_RX = re.compile(r"\d{4}-\d{2}-\d{2}")
PERSONA_COLUMNS = ("persona_id", "name", "age", "sex", "occupation", "state", "facts")


def output_schema() -> pa.Schema:
    """The `documents` contract plus this stage's extra columns (`EXTRA_FIELDS`)."""
    base = get_schema("documents").arrow_schema()
    extra = [f for f in EXTRA_FIELDS if f.name not in base.names]  # now in the contract
    return pa.schema([*base, *extra], metadata=base.metadata)


@dataclass(frozen=True)
class DocumentsResult:
    """Accepted documents, every review, dropped plan rows, counts and the coverage report."""

    table: pa.Table
    reviews: pa.Table
    dropped: pa.Table
    stats: dict[str, int]
    coverage: pa.Table
    by_type: pa.Table


def item_seed(rng_seed: int, *parts: Any) -> int:
    return int(stable_hash([rng_seed, *parts], 8), 16)


def example_text(doc_type: DocType, when: datetime) -> str:
    """The type's exemplar as JSON, its dates moved to the planned date (small models copy
    dates from examples, and the format expert would then reject them)."""
    if doc_type.example is None:
        return ""
    text = DATE_RX.sub(when.strftime("%Y-%m-%d"), json.dumps(doc_type.example, ensure_ascii=False))
    return f"Example of the format (someone else; do not reuse its content):\n{text}\n\n"


def _with_key(statement: str) -> str:
    """The statement plus the detail a reader must find in the document ("keep: $1,150")."""
    span = answer_span(statement)
    return f"{statement} (keep: {span})" if span else statement


def generate_messages(
    prompt: Prompt, ctx: DocContext, show_example: bool = False
) -> list[dict[str, str]]:
    """The generator's first-round messages for one planned document (pure)."""
    p = ctx.persona
    first = (p.get("name") or "the owner").split()[0]
    cp = ctx.counterpart_name
    if cp:
        counterpart = f"The other person in it: {cp}.\n"
    elif ctx.doc_type.counterpart == "required":
        counterpart = "Invent the other person's full name.\n"
    else:
        counterpart = ""
    explicit = [_with_key(f["statement"]) for f in ctx.planned if not f["implied"]]
    implied = [f["statement"] for f in ctx.planned if f["implied"]]
    facts = (
        f"It must clearly show these facts (as {first} would put them):\n"
        + "".join(f"- {s}\n" for s in explicit)
        if explicit
        else ""
    )
    hints = (
        "It should only hint at these, never state them outright:\n"
        + "".join(f"- {s}\n" for s in implied)
        if implied
        else ""
    )
    distractor = ""
    if ctx.distractor_text:
        who = cp or "a friend"
        distractor = (
            f"It mentions this about {who}, not about {first} ({who} said it): "
            f'"{ctx.distractor_text}"\n'
        )
    return prompt.messages(
        example=example_text(ctx.doc_type, ctx.timestamp) if show_example else "",
        label=ctx.doc_type.label,
        spec=ctx.doc_type.spec,
        name=p.get("name") or "unknown",
        state=p.get("state") or "the United States",
        date=ctx.timestamp.strftime("%Y-%m-%d %H:%M"),
        counterpart=counterpart,
        facts=facts,
        implied=hints,
        distractor=distractor,
    )


def _generator(
    ctx: DocContext, prompt: Prompt, llm: LlmClient, seed: int, show_example: bool, repair: bool
):
    """The loop's `generate(feedback, round)`.

    A revision is a fresh request with the critics' feedback appended, not a chat turn
    after the last draft: the 0.5B default model answered such turns with its last draft
    unchanged (trial on the embedded model, prompts documents-v2).
    """
    base = generate_messages(prompt, ctx, show_example)

    async def generate(feedback: str | None, round_no: int) -> LlmResult[BaseModel]:
        messages = base
        if feedback:
            note = f"\n\nA previous draft was rejected. {feedback}\nWrite a new, better one."
            messages = [*base[:-1], {"role": "user", "content": base[-1]["content"] + note}]
        result = await llm.complete_json(
            "generator", messages, ctx.doc_type.model, seed=seed + round_no
        )
        if repair and result.ok and result.value is not None:
            return replace(result, value=repair_total(result.value, ctx))
        return result

    return generate


def repair_total(draft: BaseModel, ctx: DocContext) -> BaseModel:
    """Set `total` to the sum of the item prices (types with `items_sum_to_total`).

    Arithmetic is not a language task: the 0.5B model got every receipt total wrong, and
    revising did not help. The repair is counted in `DocContext.repairs` (stats).
    """
    if "items_sum_to_total" not in ctx.doc_type.checks:
        return draft
    values = draft.model_dump()
    prices = [i.get("price") for i in values.get("items") or [] if isinstance(i, dict)]
    if not prices or not all(isinstance(p, int | float) for p in prices):
        return draft  # the format expert reports it
    total = round(sum(prices), 2)
    if values.get("total") == total:
        return draft
    ctx.repairs += 1
    return draft.model_copy(update={"total": total})


def _context(row: dict[str, Any], persona: dict[str, Any], doc_type: DocType) -> DocContext | str:
    """The critics' context for one plan row, or a drop reason."""
    facts = {f["fact_id"]: f for f in persona.get("facts") or [] if f}
    unknown = [fid for fid in row["fact_ids"] if fid not in facts]
    if unknown:
        return f"unknown_fact: {unknown} are not facts of {persona['persona_id']}"
    implied = set(row["implied_fact_ids"])
    planned = [{**facts[fid], "implied": fid in implied} for fid in row["fact_ids"]]
    return DocContext(
        document_id=row["document_id"],
        doc_type=doc_type,
        persona=persona,
        timestamp=row["timestamp"],
        planned=planned,
        counterpart_name=row.get("counterpart_name"),
        distractor_text=row.get("distractor_text"),
    )


@dataclass(frozen=True)
class _Stage:
    """What every document of one call shares."""

    types: dict[str, DocType]
    prompts: dict[str, Prompt]
    experts: list[Any]
    cfg: DocumentsConfig
    llm: LlmClient
    model: str
    version: str
    rng_seed: int


@dataclass(frozen=True)
class _Done:
    """One plan row's outcome: the document row or the drop reason, reviews, repairs."""

    doc: dict[str, Any] | None
    reason: str | None
    reviews: list[dict[str, Any]]
    repairs: int = 0


async def _write_one(row: dict[str, Any], persona: dict[str, Any] | None, st: _Stage) -> _Done:
    if persona is None:
        return _Done(None, f"unknown_persona: {row['persona_id']}", [])
    if row["doc_type"] not in st.types:
        return _Done(None, f"unknown_doc_type: {row['doc_type']} is not in the catalog", [])
    ctx = _context(row, persona, st.types[row["doc_type"]])
    if isinstance(ctx, str):
        return _Done(None, ctx, [])
    seed = item_seed(st.rng_seed, row["document_id"])
    spec = LoopSpec(
        "document", st.experts, st.cfg.max_rounds, st.model, st.version, seed,
        attempts=st.cfg.max_attempts,
    )  # fmt: skip
    generate = _generator(
        ctx, st.prompts["generate"], st.llm, seed, st.cfg.show_examples, st.cfg.repair_totals
    )
    outcome: LoopOutcome[BaseModel] = await refine(row["document_id"], ctx, generate, spec, st.llm)
    if not outcome.accepted or outcome.candidate is None:
        return _Done(None, outcome.reason, outcome.reviews, ctx.repairs)
    title, body = ctx.render(outcome.candidate)
    doc = {
        "document_id": row["document_id"],
        "persona_id": row["persona_id"],
        "doc_type": row["doc_type"],
        "title": title,
        "body": body,
        "timestamp": row["timestamp"],
        "revealed_fact_ids": [f for f in row["fact_ids"] if f in ctx.verified],
        "critic_scores": score_structs(outcome.verdicts),
        "rounds": outcome.rounds,
        "model": st.model,
        "prompt_version": st.version,
        "fields": json.dumps(outcome.candidate.model_dump(), ensure_ascii=False),
        "is_distractor": row["role"] == "distractor",
        "counterpart_id": row.get("counterpart_id"),
    }
    return _Done(doc, None, outcome.reviews, ctx.repairs)


async def generate_documents(
    plan: pa.Table, personas: pa.Table, cfg: DocumentsConfig, llm: LlmClient, *, rng_seed: int
) -> DocumentsResult:
    """Generate, critique and accept or drop every planned document, concurrently.

    Input columns: `doc_plan.PLAN_SCHEMA`; personas per `schemas/personas.py`.
    Output columns: `schemas/documents.py` + `EXTRA_FIELDS`; `reviews` per
    `schemas/reviews.py`; `dropped` is the plan rows not accepted plus `reason`.
    """
    version, prompts = load_prompts()
    st = _Stage(
        types=load_catalog(cfg.catalog_path),
        prompts=prompts,
        experts=build_experts(prompts, cfg.accept_threshold, cfg.llm_judges),
        cfg=cfg,
        llm=llm,
        model=llm.endpoints["generator"].model,
        version=version,
        rng_seed=rng_seed,
    )
    cols = [c for c in PERSONA_COLUMNS if c in personas.column_names]
    by_id = {p["persona_id"]: p for p in personas.select(cols).to_pylist()}
    rows = plan.to_pylist()
    before = llm.usage.totals()
    done = await asyncio.gather(*(_write_one(r, by_id.get(r["persona_id"]), st) for r in rows))
    after = llm.usage.totals()
    docs = [d.doc for d in done if d.doc is not None]
    reviews = [rv for d in done for rv in d.reviews]
    dropped = [{**r, "reason": d.reason} for r, d in zip(rows, done) if d.doc is None]
    table = pa.Table.from_pylist(docs, schema=output_schema())
    stats = {
        "planned": len(rows),
        "accepted": len(docs),
        "rejected": len(dropped),
        "rounds": sum(d["rounds"] for d in docs),
        "generator_failures": sum(r["expert"] == "generator" for r in reviews),
        "repaired_totals": sum(d.repairs for d in done),
        "requests": int(after.get("requests", 0) - before.get("requests", 0)),
        "cached": int(after.get("cache_hits", 0) - before.get("cache_hits", 0)),
        "requested": len(rows),
        "shortfall": len(dropped),
        "stopped.attempt_cap": sum(
            bool(d.reason) and d.reason.startswith(("rejected", "generator", "attempt cap"))
            for d in done
            if d.doc is None
        ),
    }
    stats["stopped.unplannable"] = stats["shortfall"] - stats["stopped.attempt_cap"]
    log.info(
        "documents: requested=%d accepted=%d%s", stats["requested"], stats["accepted"],
        f"; short by {stats['shortfall']}: attempt cap ({cfg.max_attempts} x {cfg.max_rounds} "
        f"rounds) reached for {stats['stopped.attempt_cap']}, "
        f"{stats['stopped.unplannable']} could not be written (see dropped reasons)"
        if stats["shortfall"] else "",
    )  # fmt: skip
    return DocumentsResult(
        table=table,
        reviews=pa.Table.from_pylist(reviews, schema=get_schema("reviews").arrow_schema()),
        dropped=pa.Table.from_pylist(
            dropped, schema=plan.schema.append(pa.field("reason", pa.string()))
        ),
        stats=stats,
        coverage=coverage_report(plan, table),
        by_type=acceptance_by_type(plan, table),
    )


def coverage_report(plan: pa.Table, documents: pa.Table) -> pa.Table:
    """Per persona fact: documents planned to reveal it, accepted ones, verified ones."""
    accepted = set(documents.column("document_id").to_pylist())
    verified: dict[tuple[str, str], int] = {}
    for pid, fids in zip(
        documents.column("persona_id").to_pylist(),
        documents.column("revealed_fact_ids").to_pylist(),
    ):
        for fid in fids:
            verified[(pid, fid)] = verified.get((pid, fid), 0) + 1
    counts: dict[tuple[str, str], list[int]] = {}
    for row in plan.select(["document_id", "persona_id", "fact_ids"]).to_pylist():
        for fid in row["fact_ids"]:
            entry = counts.setdefault((row["persona_id"], fid), [0, 0])
            entry[0] += 1
            entry[1] += row["document_id"] in accepted
    out = [
        {
            "persona_id": pid,
            "fact_id": fid,
            "planned": p,
            "accepted": a,
            "verified": verified.get((pid, fid), 0),
        }
        for (pid, fid), (p, a) in sorted(counts.items())
    ]
    schema = pa.schema(
        [
            ("persona_id", pa.string()),
            ("fact_id", pa.string()),
            ("planned", pa.int32()),
            ("accepted", pa.int32()),
            ("verified", pa.int32()),
        ]
    )
    return pa.Table.from_pylist(out, schema=schema)


def acceptance_by_type(plan: pa.Table, documents: pa.Table) -> pa.Table:
    """Per document type: planned, accepted and the acceptance rate."""
    accepted = set(documents.column("document_id").to_pylist())
    counts: dict[str, list[int]] = {}
    for doc_id, doc_type in zip(
        plan.column("document_id").to_pylist(), plan.column("doc_type").to_pylist()
    ):
        entry = counts.setdefault(doc_type, [0, 0])
        entry[0] += 1
        entry[1] += doc_id in accepted
    out = [
        {"doc_type": t, "planned": p, "accepted": a, "rate": a / p if p else 0.0}
        for t, (p, a) in sorted(counts.items())
    ]
    schema = pa.schema(
        [
            ("doc_type", pa.string()),
            ("planned", pa.int32()),
            ("accepted", pa.int32()),
            ("rate", pa.float64()),
        ]
    )
    return pa.Table.from_pylist(out, schema=schema)
