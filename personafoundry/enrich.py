"""Enrich persona skeletons with an LLM: a first-person narrative and a fact ledger.

Each skeleton goes through the generator-critic loop (`personafoundry.critic.refine`)
with the experts of `personafoundry.persona_critics`; accepted personas keep every
skeleton column and gain `narrative`, `traits`, `facts`, `critic_scores`, `rounds`,
`model` and `prompt_version`.

Decisions:
- Name and demographics come from the skeleton (census sampling, names, seed loading,
  which samples seed demographics from the census conditionally on the seed text); the
  LLM writes prose and facts around them and may not change them. Traits a skeleton
  lacks are sampled by `personafoundry.persona_fill` (from data, never from the LLM).
- A seed persona whose census/SSA name is already used in the release gets another one
  (unless its text says the name); a census persona with a used name is dropped.
- Seed personas: every seed sentence becomes a fact verbatim (split on sentence ends,
  categorised by keywords), inserted by code rather than copied by the model, so it is
  exact; a seed that contradicts its own skeleton is dropped before any generation.
- Facts may carry `valid_from` / `valid_to` years (a past job or address) so documents
  can follow a timeline. They are parsed from the statement ("from 2010 to 2016",
  "since 2015"), not asked for as fields: the 0.5B model filled such fields at random.
  They are extra struct fields beyond `schemas/personas.py` (`conform_table` drops them
  until the contract adds them).
- Names are unique within the call plus `reserved_names` (names already used in the
  release): a later duplicate is dropped with reason `duplicate_name` before any LLM call.
- Seeds per request derive from the run seed, the persona and the round, so a rerun hits
  the response cache and a revision never replays a cached invalid reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, Field, create_model

from personafoundry.config import PersonasConfig
from personafoundry.critic import LoopOutcome, LoopSpec, refine, score_structs
from personafoundry.ids import make_id, stable_hash
from personafoundry.llm import LlmClient, LlmResult
from personafoundry.persona_critics import (
    Fact,
    PersonaCandidate,
    PersonaContext,
    classify_statement,
    persona_experts,
    seed_conflicts,
    tidy_candidate,
    validity_years,
)
from personafoundry.persona_fill import reference_year, sample_name, sample_traits
from personafoundry.persona_prompts import (
    generator_messages,
    load_categories,
    prompt_version,
    render_profile,
    revision_messages,
    split_seed,
)
from personafoundry.schema import CRITIC_SCORES
from schemas.personas import TRAITS_TYPE
from schemas.reviews import SCHEMA as REVIEWS

log = logging.getLogger(__name__)

FACT_TYPE = pa.struct(
    [
        pa.field("fact_id", pa.string()),
        pa.field("category", pa.string()),
        pa.field("statement", pa.string()),
        pa.field("valid_from", pa.int16()),
        pa.field("valid_to", pa.int16()),
    ]
)
OUTPUT_FIELDS = (
    ("narrative", pa.string()),
    ("traits", TRAITS_TYPE),
    ("facts", pa.list_(FACT_TYPE)),
    ("critic_scores", CRITIC_SCORES),
    ("rounds", pa.int16()),
    ("model", pa.string()),
    ("prompt_version", pa.string()),
)
NARRATIVE_SENTENCES = (4, 6)  # a list in the schema: the grammar then forces 4+ sentences
# Grammar guides (JSON schema `pattern`, which llama.cpp, vLLM and OpenAI decode under): a
# fact is one first-person sentence, a narrative sentence opens in the first person or
# with a time or place. Sent to the endpoint only, not validated on the reply: the `ledger`
# gate judges, so an endpoint that ignores patterns gets the same verdicts.
FACT_PATTERN = r"^(I|My|I'm|I've|I'd) [^.;!?\"\\\n]+[.]$"
SENTENCE_PATTERN = (
    r"^(I|My|I'm|I've|I'd|We|Our|On|At|In|After|Every|Most|When|Since|Last|Each|This|Today)"
    r" [^\"\\\n]+$"
)
# max_tokens of a draft = NARRATIVE_TOKENS + TOKENS_PER_FACT x facts_max (890 at the default
# 14), sent per request, so it does not depend on the endpoint's max_tokens. Measured on the
# embedded 0.5B model (JSON grammar): a 4-sentence narrative + 10 facts took 390 completion
# tokens on a 358-token prompt, well inside both this bound and the model's 4096 context.
TOKENS_PER_FACT = 45
NARRATIVE_TOKENS = 260


@dataclass(frozen=True)
class EnrichResult:
    """Accepted personas, every critic verdict, rejected skeletons with a reason, counts."""

    table: pa.Table
    reviews: pa.Table
    dropped: pa.Table
    stats: dict[str, int]


@cache
def draft_model(facts_min: int, facts_max: int) -> type[BaseModel]:
    """The generator's reply schema: small, with the fixed categories as an enum.

    The narrative is a list of sentences (joined by `to_candidate`): as one string the
    0.5B model wrote only the given opener and closed the quote.

    No `maxLength` on strings: llama.cpp expands it into one nested grammar rule per
    character, and at a few hundred characters the server fails to parse the grammar and
    drops the connection. Lengths are checked by the `ledger` critic instead.
    """
    categories = tuple(load_categories()[0])
    fact = create_model(
        "FactDraft",
        category=(Literal[categories], ...),  # type: ignore[valid-type]
        statement=(str, Field(json_schema_extra={"pattern": FACT_PATTERN})),
    )
    return create_model(
        "PersonaDraft",
        narrative=(
            list[str],
            Field(
                min_length=NARRATIVE_SENTENCES[0],
                max_length=NARRATIVE_SENTENCES[1],
                json_schema_extra={"items": {"type": "string", "pattern": SENTENCE_PATTERN}},
            ),
        ),
        facts=(
            list[fact],  # type: ignore[valid-type]
            Field(
                min_length=facts_min,
                max_length=facts_max,
                # the grammar asks for every slot, the reply may hold facts_min..facts_max
                json_schema_extra={
                    "prefixItems": fact_slots(facts_max),
                    "items": False,
                    "minItems": facts_max,
                },
            ),
        ),
    )


def fact_slots(count: int) -> list[dict[str, Any]]:
    """Grammar guide for the ledger: `count` facts, the categories in turn, one per slot.

    Told only "10 to 14 facts", the 0.5B model wrote the minimum and repeated itself; a
    category per slot gives each fact a subject, and asking for the maximum leaves
    `tidy_candidate` room to leave out bad ones. Each slot also opens with a fixed `topic`
    (`seeds/fact_categories.toml`), because a category met a second time made the model
    copy its first fact word for word. Replies are validated against the plain list (any
    order, `facts_min` to `facts_max`); the topic is dropped.
    """
    categories = load_categories()[0]
    names = list(categories)
    slots = []
    for i in range(count):
        name = names[i % len(names)]
        topics = categories[name].get("topics") or [categories[name]["description"]]
        slots.append(
            {
                "type": "object",
                "properties": {
                    "topic": {"const": topics[i // len(names) % len(topics)]},
                    "category": {"const": name},
                    "statement": {"type": "string", "pattern": FACT_PATTERN},
                },
                "required": ["topic", "category", "statement"],
            }
        )
    return slots


def item_seed(rng_seed: int, persona_id: str, purpose: str) -> int:
    return int(stable_hash([rng_seed, persona_id, purpose])[:8], 16)


def to_candidate(draft: BaseModel, seeds: tuple[str, ...]) -> PersonaCandidate:
    """Seed sentences (verbatim, first) + the generated facts."""
    facts = [Fact(classify_statement(s), s, *validity_years(s), seed=True) for s in seeds]
    for f in draft.facts:  # type: ignore[attr-defined]
        text = f.statement.strip()
        facts.append(Fact(f.category, text, *validity_years(text)))
    narrative = " ".join(_sentence(t) for t in draft.narrative if t.strip())  # type: ignore[attr-defined]
    return PersonaCandidate(narrative, tuple(facts))


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1] in ".!?\"'" else text + "."


@dataclass(frozen=True)
class _Done:
    """One persona's outcome: the output row or the drop reason, and its reviews."""

    persona_id: str
    row: dict[str, Any] | None
    reason: str | None
    reviews: list[dict[str, Any]]
    rounds: int = 0
    tidied: tuple[str, ...] = ()  # left out of the accepted draft (`tidy_candidate`)


async def enrich_personas(
    skeletons: pa.Table,
    cfg: PersonasConfig,
    llm: LlmClient,
    *,
    rng_seed: int,
    reserved_names: Collection[str] = (),
) -> EnrichResult:
    """Write a narrative and a fact ledger for every skeleton, judged and revised by critics.

    Input columns: the skeleton columns of `schemas/personas.py` (persona_id, source,
    seed_text, demographics, name, traits).
    Output columns: `schemas/personas.py` (+ `valid_from`/`valid_to` inside each fact);
    `reviews` follows `schemas/reviews.py`; `dropped` is the skeletons plus `reason`.
    """
    rows = skeletons.to_pylist()
    version = prompt_version()
    model = llm.endpoints["generator"].model
    before = llm.usage.totals()
    pending, done = [], []
    taken = set(reserved_names)
    for row in rows:
        gate = _name_gate(row, taken)
        if gate:
            done.append(_stop(row["persona_id"], "name_unique", gate, (model, version, rng_seed)))
            continue
        if row.get("name") and row["name"] not in taken:
            taken.add(row["name"])
        elif row.get("name"):
            row = {**row, "name": None}
        pending.append(row)
    done += await asyncio.gather(
        *(_enrich_one(r, cfg, llm, rng_seed, model, version, taken) for r in pending)
    )
    after = llm.usage.totals()
    accepted = [d.row for d in done if d.row is not None]
    rejected = [d for d in done if d.row is None]
    reviews = [r for d in done for r in d.reviews]
    stats = {
        "skeletons": len(rows),
        "accepted": len(accepted),
        "rejected": len(rejected),
        "rounds": sum(d.rounds for d in done),
        "seed": sum(r.get("source") == "seed" for r in rows),
        "generator_failures": sum(r["expert"] == "generator" for r in reviews),
        "facts_tidied": sum(not t.startswith("narrative: ") for d in done for t in d.tidied),
        "narrative_sentences_cut": sum(t.startswith("narrative: ") for d in done for t in d.tidied),
        "calls": int(
            after["requests"] + after["cache_hits"] - before["requests"] - before["cache_hits"]
        ),
        "cached": int(after["cache_hits"] - before["cache_hits"]),
    }
    log.info(
        "enrich: skeletons=%d accepted=%d rejected=%d rounds=%d",
        len(rows),
        len(accepted),
        len(rejected),
        stats["rounds"],
    )
    return EnrichResult(
        table=_output_table(accepted, skeletons.schema),
        reviews=pa.Table.from_pylist(reviews, schema=REVIEWS.arrow_schema()),
        dropped=_dropped_table(rows, rejected, skeletons.schema),
        stats=stats,
    )


def _name_gate(row: dict[str, Any], taken: set[str]) -> str | None:
    if row.get("source") == "seed" and row.get("age") is None:
        return (
            "seed_demographics_missing: load seed personas with "
            "personafoundry.seeds.load_seed_personas (complete=True)"
        )
    if not row.get("name"):
        return None if row.get("source") == "seed" else "missing_name: the skeleton has no name"
    if row["name"] in taken:
        if row.get("source") == "seed" and row["name"] not in (row.get("seed_text") or ""):
            return None  # a sampled seed name: `_enrich_one` draws an unused one
        return f"duplicate_name: {row['name']!r} is already used in this release"
    return None


def _gate_review(
    persona_id: str,
    expert: str,
    reason: str,
    model: str,
    version: str,
    seed: int,
    error: str | None = None,
) -> dict[str, Any]:
    """A review row for a persona stopped before the loop (failed gate or seed fill)."""
    return {
        "review_id": make_id("rev", seed, persona_id, 1, expert),
        "item_id": persona_id,
        "item_kind": "persona",
        "round": 1,
        "expert": expert,
        "score": None if error else 1.0,
        "passed": False,
        "feedback": reason,
        "accepted": False,
        "error": error,
        "model": model,
        "prompt_version": version,
    }


def _stop(
    pid: str, expert: str, reason: str, how: tuple[str, str, int], error: str | None = None
) -> _Done:
    """A persona stopped before (or instead of) the loop, with its one review row."""
    model, version, seed = how
    return _Done(
        pid, None, reason, [_gate_review(pid, expert, reason, model, version, seed, error)]
    )


async def _enrich_one(
    row: dict[str, Any],
    cfg: PersonasConfig,
    llm: LlmClient,
    rng_seed: int,
    model: str,
    version: str,
    taken: set[str],
) -> _Done:
    pid, how = row["persona_id"], (model, version, rng_seed)
    if not row.get("name"):  # a seed persona: sampled from census/SSA name tables, not the LLM
        row = {**row, "name": sample_name(row, rng_seed, taken)}
        if row["name"] is None:
            return _stop(pid, "name_unique", "duplicate_name: no unused name found", how)
        taken.add(row["name"])  # no await since the check: safe under asyncio
    if not row.get("traits"):
        row = {**row, "traits": sample_traits(rng_seed, pid)}
    seeds = split_seed(row.get("seed_text")) if row.get("source") == "seed" else ()
    context = PersonaContext(
        row, cfg.facts_min, cfg.facts_max, reference_year(), render_profile(row), seeds
    )
    conflicts = seed_conflicts(context)
    if conflicts:
        reason = "seed_conflicts_with_profile: " + "; ".join(conflicts)
        return _stop(pid, "demographics", reason, how)
    seed = item_seed(rng_seed, pid, "generate")
    spec = LoopSpec(
        "persona", persona_experts(judges=cfg.llm_judges), cfg.max_rounds, model, version, seed
    )
    generate = _generator(row, cfg, llm, context, seed)
    outcome = await refine(pid, context, generate, spec, llm)
    accepted = _accepted_row(row, outcome, model, version, rng_seed) if outcome.accepted else None
    tidied = outcome.candidate.dropped if accepted and outcome.candidate else ()
    return _Done(pid, accepted, outcome.reason, outcome.reviews, outcome.rounds, tidied)


def _generator(
    row: dict[str, Any], cfg: PersonasConfig, llm: LlmClient, context: PersonaContext, seed: int
):
    """The loop's `generate(feedback, round)`: revisions add the critique to the prompt.

    Each draft is tidied (`tidy_candidate`) before the critics see it.
    """
    seeds = context.seed_sentences
    base = generator_messages(row, cfg.facts_min, cfg.facts_max, seeds)
    schema = draft_model(cfg.facts_min, cfg.facts_max)
    max_tokens = NARRATIVE_TOKENS + TOKENS_PER_FACT * cfg.facts_max

    async def generate(feedback: str | None, round_no: int) -> LlmResult[PersonaCandidate]:
        messages = revision_messages(base, feedback) if feedback else base
        result = await llm.complete_json(
            "generator", messages, schema, seed=seed + round_no, max_tokens=max_tokens
        )
        if not result.ok or result.value is None:
            return result  # type: ignore[return-value]
        candidate = tidy_candidate(to_candidate(result.value, seeds), context)
        return replace(result, value=candidate)  # type: ignore[arg-type]

    return generate


def _accepted_row(
    row: dict[str, Any],
    outcome: LoopOutcome[PersonaCandidate],
    model: str,
    version: str,
    rng_seed: int,
) -> dict[str, Any]:
    candidate = outcome.candidate
    assert candidate is not None
    pid = row["persona_id"]
    facts = [
        {
            "fact_id": make_id("fact", rng_seed, pid, i),
            "category": f.category,
            "statement": f.statement,
            "valid_from": f.valid_from,
            "valid_to": f.valid_to,
        }
        for i, f in enumerate(candidate.facts)
    ]
    return {
        **row,
        "narrative": candidate.narrative,
        "facts": facts,
        "critic_scores": score_structs(outcome.verdicts),
        "rounds": outcome.rounds,
        "model": model,
        "prompt_version": version,
    }


def _output_schema(skeleton: pa.Schema) -> pa.Schema:
    fields = [f for f in skeleton if f.name not in dict(OUTPUT_FIELDS)]
    return pa.schema([*fields, *(pa.field(n, t) for n, t in OUTPUT_FIELDS)])


def _output_table(rows: list[dict[str, Any]], skeleton: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_output_schema(skeleton))


def _dropped_table(
    rows: list[dict[str, Any]], rejected: list[_Done], skeleton: pa.Schema
) -> pa.Table:
    """Rejected skeletons as given (not the filled row), plus `reason`."""
    by_id = {r["persona_id"]: r for r in rows}
    out = [{**by_id[d.persona_id], "reason": d.reason} for d in rejected]
    return pa.Table.from_pylist(out, schema=skeleton.append(pa.field("reason", pa.string())))
