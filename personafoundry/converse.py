"""Write conversations between paired personas with a generator-critic loop.

Each pair from `pairing.pair_personas` becomes a `Dialogue`; the generator writes a draft,
the mixture of experts (`conversation_critics` gates, then `conversation_judges`) judges
it, and the generator revises with the failed experts' feedback, up to `max_rounds`.

Decisions:
- Two generator modes (`conversation_drafts.py`): `one_call` writes every turn in one
  JSON reply; `turn_by_turn` makes one call per turn, where the speaker sees only its own
  persona and the conversation so far (small models mix up speakers in one call).
  Measured with benchmarks/converse.py on the embedded model (6 pairs, 3 rounds, 4 turns,
  2026-12-03, load average 1 rising to 8 from other jobs): neither mode got a conversation
  accepted (0/6 each, as with 2 pairs before); one-call drafts cost 660 tokens each (11,878
  for 18 drafts) against 1,488 (26,783) turn by turn, and failed 1.9 experts per draft
  against 3.5: turn-by-turn speakers mostly echo the previous line (repetition failed 18
  times in 18 rounds) and paste critic feedback into their turns. The default is therefore
  `one_call`; acceptance does not separate the modes at 0.5B, so rerun the benchmark on a
  stronger generator before trusting either. One-call prompt v3 (profiles labelled as
  background) stopped the pasted profile turns: still 0/6, 665 tokens and 1.4 failed
  experts per draft, most of them `fact_use` (the model leaves its facts out).
- Which facts a conversation used is detected lexically in each speaker's own turns.
- Few-shot exemplars (`conversation_exemplars.py`): pairs run in waves of `wave_size`, and
  after each wave the best accepted conversations rotate into the pool ahead of the
  hand-written ones, as in Synthetic-Persona-Chat. The final pool is returned so the next
  shard continues from it. Exemplars are shown (as earlier user/assistant exchanges) in
  `one_call` mode only: in `turn_by_turn` the embedded model pasted example lines into its
  turns.
- Acceptance follows `ConverseConfig.acceptance` (see `conversation_judges.mixture_accepts`);
  every verdict of every round is a `reviews` row; a failed generator attempt is a row with
  expert `generator` and its reason in `error`.
- Accepted rows are the target: with `target=N`, waves stop once N are accepted and the
  last waves shrink to the number still missing, so a pair yields at most one conversation
  and the stage never overshoots; pairs left unstarted are `dropped` with reason
  `not_needed`. Without a target, every pair is one requested conversation. In a run,
  `converse.target` is split over the shards batch by batch (`conversation_batches.py`),
  and each call gets its shard's share.
- `stats` (`conversation_stats.py`) always hold `requested`, `accepted`, `shortfall` and
  the `stopped.*` cap counters, rejections by reason and by final rejecting expert, and
  token figures as this call's deltas of the client's usage counters (cache hits cost no
  tokens). A budget cap is not a counter: `BudgetExceeded` stops the run with an error
  naming the cap.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from personafoundry.config import ConverseConfig
from personafoundry.conversation_critics import (
    RULES_VERSION,
    Dialogue,
    Draft,
    rule_experts,
    used_fact_ids,
)  # fmt: skip
from personafoundry.conversation_drafts import (
    build_dialogues,
    draft_one_call,
    draft_turn_by_turn,
    first_flagged_turn,
    revision_request,
)  # fmt: skip
from personafoundry.conversation_exemplars import (
    exemplar_of,
    load_exemplars,
    rotate_exemplars,
    shown_exemplars,
)  # fmt: skip
from personafoundry.conversation_judges import Prompt, llm_judges, load_prompt, mixture_accepts
from personafoundry.conversation_stats import shortfall_text, stage_stats, usage_counters
from personafoundry.critic import GENERATOR_EXPERT, Verdict, review_row, score_structs
from personafoundry.errors import ConfigError
from personafoundry.ids import make_id, stable_hash
from personafoundry.llm import LlmClient
from personafoundry.schema import conform_table
from schemas.conversations import SCHEMA as CONVERSATIONS
from schemas.reviews import SCHEMA as REVIEWS

__all__ = ["ConverseResult", "generate_conversations", "load_exemplars", "rotate_exemplars"]
log = logging.getLogger(__name__)
DROPPED_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()), ("persona_ids", pa.list_(pa.string())),
        ("scenario", pa.string()), ("reason", pa.string()), ("rounds", pa.int16()),
        ("turns", CONVERSATIONS.column("turns").type),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class ConverseResult:
    table: pa.Table
    reviews: pa.Table
    dropped: pa.Table
    stats: dict[str, float]
    exemplars: list[dict[str, Any]]


@dataclass(frozen=True)
class Outcome:
    dialogue: Dialogue
    accepted: bool
    draft: Draft | None
    rounds: int
    verdicts: list[Verdict]
    reviews: list[dict[str, Any]]
    reason: str | None


def _seed(*parts: Any) -> int:
    return int(stable_hash(list(parts))[:8], 16)


@dataclass(frozen=True)
class Stage:
    """What every conversation of one call shares."""

    cfg: ConverseConfig
    llm: LlmClient
    rng_seed: int
    prompt: Prompt
    gates: list[Any]
    judges: list[Any]
    versions: dict[str, tuple[str, str]]  # expert -> (model, prompt_version)


def _review_rows(
    st: Stage, item_id: str, round_no: int, verdicts: list[Verdict], accepted: bool
) -> list[dict[str, Any]]:
    rows = []
    for v in verdicts:
        model, version = st.versions.get(v.expert, ("rules", RULES_VERSION))
        rid = make_id("rev", st.rng_seed, item_id, round_no, v.expert)
        rows.append(review_row(rid, item_id, "conversation", round_no, v, accepted, model, version))
    return rows


async def judge_draft(st: Stage, draft: Draft, d: Dialogue, seed: int) -> list[Verdict]:
    """Gates in order; the LLM judges (concurrently) only when every gate passed."""
    verdicts = [await g.judge(draft, d, st.llm, seed=seed) for g in st.gates]
    if all(v.passed for v in verdicts) and st.judges:
        panels = await asyncio.gather(
            *(j.judge_many(draft, d, st.llm, seed=seed) for j in st.judges)
        )
        verdicts += [v for panel in panels for v in panel]
    return verdicts


async def converse_one(st: Stage, d: Dialogue, examples: list[dict[str, Any]]) -> Outcome:
    """Generate, judge and revise one conversation until accepted or out of rounds.

    After `max_rounds` rejected rounds a fresh attempt starts (no feedback, no kept turns,
    new seeds), up to `max_attempts`; rounds are numbered across attempts.
    """
    reviews: list[dict[str, Any]] = []
    feedback, keep, draft, verdicts, reason = "", (), None, [], None
    total = st.cfg.max_rounds * st.cfg.max_attempts
    for round_no in range(1, total + 1):
        if (round_no - 1) % st.cfg.max_rounds == 0:
            feedback, keep = "", ()  # a fresh attempt
        seed = _seed(st.rng_seed, d.conversation_id, round_no)
        if st.cfg.mode == "one_call":
            result = await draft_one_call(d, feedback, examples, st.llm, st.prompt, seed)
        else:
            result = await draft_turn_by_turn(d, feedback, st.llm, st.prompt, seed, keep)
        if not result.ok or result.value is None:
            verdicts = [Verdict(GENERATOR_EXPERT, None, False, "no valid draft", result.error)]
            reviews += _review_rows(st, d.conversation_id, round_no, verdicts, False)
            reason, keep = f"generator failed: {result.error}", ()
            continue
        draft = result.value
        verdicts = await judge_draft(st, draft, d, seed)
        accepted = mixture_accepts(verdicts, st.cfg)
        reviews += _review_rows(st, d.conversation_id, round_no, verdicts, accepted)
        if accepted:
            return Outcome(d, True, draft, round_no, verdicts, reviews, None)
        reason = "rejected by " + ", ".join(v.expert for v in verdicts if not v.passed)
        log.debug("converse: %s round %d %s", d.conversation_id, round_no, reason)
        feedback = revision_request(verdicts)
        keep = draft.turns[: first_flagged_turn(verdicts)]
    if st.cfg.max_attempts > 1:
        reason = (
            f"attempt cap reached ({st.cfg.max_attempts} x {st.cfg.max_rounds} rounds): {reason}"
        )
    return Outcome(d, False, draft, total, verdicts, reviews, reason)


def _conversation_row(st: Stage, o: Outcome) -> dict[str, Any]:
    d, draft = o.dialogue, o.draft
    assert draft is not None
    return {
        "conversation_id": d.conversation_id,
        "persona_ids": [s.persona_id for s in d.speakers],
        "scenario": d.scenario,
        "turns": [{"speaker_id": pid, "text": text} for pid, text in draft.turns],
        "used_fact_ids": used_fact_ids(draft, d),
        "critic_scores": score_structs([v for v in o.verdicts if v.score is not None]),
        "rounds": o.rounds,
        "model": st.llm.endpoints["generator"].model,
        "prompt_version": st.prompt.version,
    }


def _stage(cfg: ConverseConfig, llm: LlmClient, rng_seed: int) -> Stage:
    judges = llm_judges(cfg.judges)
    prompt = load_prompt("one_call" if cfg.mode == "one_call" else "turn")
    versions = {GENERATOR_EXPERT: (llm.endpoints["generator"].model, prompt.version)}
    for j in judges:
        versions |= {n: (llm.endpoints["critic"].model, j.prompt.version) for n in j.names}
    return Stage(cfg, llm, rng_seed, prompt, rule_experts(), judges, versions)


async def _run_waves(
    st: Stage, dialogues: list[Dialogue], pool: list[dict[str, Any]], target: int | None
) -> tuple[list[Outcome], list[Dialogue], list[dict[str, Any]]]:
    """Outcomes in pair order, the dialogues left unstarted, and the final exemplar pool.

    With a target, a wave holds at most the number still missing, so the stage stops at
    exactly `target` accepted conversations or when the pairs run out.
    """
    cfg, outcomes, todo, wave_no = st.cfg, [], list(dialogues), 0
    while todo:
        still = cfg.wave_size if target is None else target - sum(o.accepted for o in outcomes)
        size = min(cfg.wave_size, still)
        if size <= 0:
            break
        wave, todo = todo[:size], todo[size:]
        shown = shown_exemplars(pool, len(wave), cfg.exemplars_shown)
        done = await asyncio.gather(
            *(converse_one(st, d, ex) for d, ex in zip(wave, shown, strict=True))
        )
        outcomes += done
        fresh = [
            exemplar_of(o.dialogue, o.draft, o.verdicts) for o in done if o.accepted and o.draft
        ]
        pool = rotate_exemplars(pool, fresh, cfg.exemplar_pool)
        wave_no += 1
        log.debug(
            "converse: wave %d accepted %d/%d", wave_no, sum(o.accepted for o in done), len(done)
        )
    return outcomes, todo, pool


def _dropped_row(
    d: Dialogue, reason: str | None, rounds: int, draft: Draft | None
) -> dict[str, Any]:
    return {
        "conversation_id": d.conversation_id, "persona_ids": [s.persona_id for s in d.speakers],
        "scenario": d.scenario, "reason": reason, "rounds": rounds,
        "turns": [{"speaker_id": p, "text": t} for p, t in (draft.turns if draft else ())],
    }  # fmt: skip


def _conform(rows: list[dict[str, Any]], schema: Any) -> pa.Table:
    return (
        conform_table(pa.Table.from_pylist(rows), schema)[0]
        if rows
        else schema.arrow_schema().empty_table()
    )


async def generate_conversations(
    pairs: pa.Table, personas: pa.Table, cfg: ConverseConfig, llm: LlmClient, *,
    rng_seed: int, exemplars: list[dict[str, Any]] | None = None, target: int | None = None,
) -> ConverseResult:  # fmt: skip
    """Write, critique and revise conversations for the pairs; keep the accepted ones.

    One conversation per pair in pair order; with `target`, stop at `target` accepted ones
    (the remaining pairs are reserves, dropped as `not_needed`). `stats` report
    requested, accepted, shortfall and the caps that caused it (`conversation_stats.py`).

    Input columns: pairs from `pairing.PAIRS_SCHEMA` (conversation_id, persona_ids,
    scenario); personas per `schemas/personas.py` (name, age, state, occupation,
    narrative, facts).
    Output columns: `schemas/conversations.py`; `reviews` per `schemas/reviews.py`;
    `dropped` = `DROPPED_SCHEMA` (the last draft and why it was rejected).
    """
    if target is not None and target < 0:
        raise ConfigError(f"conversations: target is {target}; ask for 0 or more accepted ones.")
    dialogues, missing = build_dialogues(pairs, personas, cfg, rng_seed)
    st = _stage(cfg, llm, rng_seed)
    seeds = list(exemplars if exemplars is not None else load_exemplars())
    before = usage_counters(llm)
    outcomes, unused, pool = await _run_waves(
        st, dialogues, rotate_exemplars(seeds, [], cfg.exemplar_pool), target
    )
    after = usage_counters(llm)
    table = _conform([_conversation_row(st, o) for o in outcomes if o.accepted], CONVERSATIONS)
    reviews = _conform([r for o in outcomes for r in o.reviews], REVIEWS)
    dropped_rows = (
        missing
        + [
            _dropped_row(o.dialogue, o.reason, o.rounds, o.draft)
            for o in outcomes
            if not o.accepted
        ]
        + [_dropped_row(d, "not_needed", 0, None) for d in unused]
    )
    dropped = pa.Table.from_pylist(
        [{k: r.get(k) for k in DROPPED_SCHEMA.names} for r in dropped_rows], DROPPED_SCHEMA
    )
    usage = {k: v - before.get(k, 0) for k, v in after.items()}
    stats = stage_stats(outcomes, usage, unknown=len(missing), unused=len(unused), target=target)
    log.info(
        "converse: requested=%d accepted=%d rounds=%d%s", stats["requested"], stats["accepted"],
        stats["rounds"], shortfall_text(stats, cfg),
    )  # fmt: skip
    return ConverseResult(table, reviews, dropped, stats, pool)
