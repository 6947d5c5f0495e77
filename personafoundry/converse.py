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
- Few-shot exemplars: the hand-written ones in `seeds/exemplars/conversations.jsonl` seed a
  pool; pairs run in waves of `wave_size`, and after each wave the best accepted
  conversations (mean judge score) rotate in ahead of the hand-written ones, as in
  Synthetic-Persona-Chat. The final pool is returned so the next shard continues from it.
  Exemplars are shown (as earlier user/assistant exchanges) in `one_call` mode only: in
  `turn_by_turn` the embedded model pasted example lines into its turns.
- Acceptance follows `ConverseConfig.acceptance` (see `conversation_judges.mixture_accepts`);
  every verdict of every round is a `reviews` row; a failed generator attempt is a row with
  expert `generator` and its reason in `error`.
- Token figures in `stats` are this call's deltas of the client's usage counters (cache
  hits cost no tokens), so a benchmark can divide them by accepted conversations.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
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
from personafoundry.conversation_judges import (
    JUDGES,
    Prompt,
    llm_judges,
    load_prompt,
    mixture_accepts,
)  # fmt: skip
from personafoundry.critic import GENERATOR_EXPERT, Verdict, score_structs
from personafoundry.ids import make_id, stable_hash
from personafoundry.llm import LlmClient
from personafoundry.paths import SEEDS_DIR
from personafoundry.schema import conform_table
from schemas.conversations import SCHEMA as CONVERSATIONS
from schemas.reviews import SCHEMA as REVIEWS

log = logging.getLogger(__name__)
EXEMPLARS_PATH = SEEDS_DIR / "exemplars" / "conversations.jsonl"
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


def load_exemplars(path: Path = EXEMPLARS_PATH) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


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
        rows.append(
            {
                "review_id": make_id("rev", st.rng_seed, item_id, round_no, v.expert),
                "item_id": item_id, "item_kind": "conversation", "round": round_no,
                "expert": v.expert, "score": v.score, "passed": v.passed,
                "feedback": v.feedback, "accepted": accepted, "error": v.error,
                "model": model, "prompt_version": version,
            }
        )  # fmt: skip
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


def _exemplar_of(o: Outcome) -> dict[str, Any]:
    assert o.draft is not None
    judged = [v.score for v in o.verdicts if v.expert in JUDGES and v.score is not None]
    scores = judged or [v.score for v in o.verdicts if v.score is not None]
    return {
        "exemplar_id": o.dialogue.conversation_id,
        "source": "run",
        "scenario": o.dialogue.scenario,
        "score": sum(scores) / len(scores) if scores else None,
        "turns": [
            {"speaker": o.dialogue.speaker(pid).label, "text": t} for pid, t in o.draft.turns
        ],
    }


def rotate_exemplars(
    pool: list[dict[str, Any]], new: list[dict[str, Any]], size: int
) -> list[dict[str, Any]]:
    """Best accepted run conversations first (by mean judge score), then hand-written ones."""
    run = sorted(
        [e for e in pool + new if e.get("source") == "run"],
        key=lambda e: (-(e.get("score") or 0.0), e["exemplar_id"]),
    )
    seeds = [e for e in pool if e.get("source") != "run"]
    return (run + seeds)[:size]


def _usage(llm: LlmClient) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, counters in llm.stats().items():
        role = key.split("/")[0]
        for name in (
            "requests",
            "cache_hits",
            "prompt_tokens",
            "completion_tokens",
            "invalid_replies",
        ):
            out[f"{role}_{name}"] = out.get(f"{role}_{name}", 0) + counters[name]
    return out


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


def _stats(
    st: Stage, outcomes: list[Outcome], before: dict[str, float], dropped: int
) -> dict[str, float]:
    after = _usage(st.llm)
    stats: dict[str, float] = {k: v - before.get(k, 0) for k, v in after.items()}
    accepted = [o for o in outcomes if o.accepted]
    tokens = sum(
        stats.get(f"{r}_{k}", 0)
        for r in ("generator", "critic")
        for k in ("prompt_tokens", "completion_tokens")
    )
    stats |= {
        "pairs": len(outcomes) + dropped, "requested": len(outcomes) + dropped,
        "shortfall": len(outcomes) + dropped - len(accepted),
        "stopped.attempt_cap": len(outcomes) - len(accepted),
        "stopped.unknown_persona": dropped, "accepted": len(accepted),
        "rejected": len(outcomes) - len(accepted) + dropped,
        "acceptance_rate": len(accepted) / len(outcomes) if outcomes else 0.0,
        "rounds": sum(o.rounds for o in outcomes),
        "rounds_per_accepted": sum(o.rounds for o in accepted) / len(accepted) if accepted else 0.0,
        "tokens": tokens, "tokens_per_accepted": tokens / len(accepted) if accepted else 0.0,
    }  # fmt: skip
    for o in outcomes:
        for row in o.reviews:
            if not row["passed"]:
                stats[f"failed.{row['expert']}"] = stats.get(f"failed.{row['expert']}", 0) + 1
        if not o.accepted:
            key = (
                "rejected.generator"
                if (o.reason or "").startswith("generator")
                else "rejected.critics"
            )
            stats[key] = stats.get(key, 0) + 1
    return stats


async def generate_conversations(
    pairs: pa.Table, personas: pa.Table, cfg: ConverseConfig, llm: LlmClient, *,
    rng_seed: int, exemplars: list[dict[str, Any]] | None = None,
) -> ConverseResult:  # fmt: skip
    """Write, critique and revise one conversation per pair; keep the accepted ones.

    Input columns: pairs from `pairing.PAIRS_SCHEMA` (conversation_id, persona_ids,
    scenario); personas per `schemas/personas.py` (name, age, state, occupation,
    narrative, facts).
    Output columns: `schemas/conversations.py`; `reviews` per `schemas/reviews.py`;
    `dropped` = `DROPPED_SCHEMA` (the last draft and why it was rejected).
    """
    dialogues, missing = build_dialogues(pairs, personas, cfg, rng_seed)
    judges = llm_judges(cfg.judges)
    versions = {GENERATOR_EXPERT: (llm.endpoints["generator"].model, "")}
    for j in judges:
        versions |= {n: (llm.endpoints["critic"].model, j.prompt.version) for n in j.names}
    prompt = load_prompt("one_call" if cfg.mode == "one_call" else "turn")
    versions[GENERATOR_EXPERT] = (versions[GENERATOR_EXPERT][0], prompt.version)
    st = Stage(cfg, llm, rng_seed, prompt, rule_experts(), judges, versions)
    pool = rotate_exemplars(
        list(exemplars if exemplars is not None else load_exemplars()), [], cfg.exemplar_pool
    )
    before, outcomes = _usage(llm), []
    for start in range(0, len(dialogues), cfg.wave_size):
        wave = dialogues[start : start + cfg.wave_size]
        shown = [
            [pool[(i + k) % len(pool)] for k in range(min(cfg.exemplars_shown, len(pool)))]
            for i in range(len(wave))
        ]
        done = await asyncio.gather(
            *(converse_one(st, d, ex) for d, ex in zip(wave, shown, strict=True))
        )
        outcomes += done
        pool = rotate_exemplars(
            pool, [_exemplar_of(o) for o in done if o.accepted], cfg.exemplar_pool
        )
        log.debug(
            "converse: wave %d accepted %d/%d",
            start // cfg.wave_size + 1,
            sum(o.accepted for o in done),
            len(done),
        )
    rows = [_conversation_row(st, o) for o in outcomes if o.accepted]
    table, _ = (
        conform_table(pa.Table.from_pylist(rows), CONVERSATIONS)
        if rows
        else (CONVERSATIONS.arrow_schema().empty_table(), [])
    )
    review_rows = [r for o in outcomes for r in o.reviews]
    reviews, _ = (
        conform_table(pa.Table.from_pylist(review_rows), REVIEWS)
        if review_rows
        else (REVIEWS.arrow_schema().empty_table(), [])
    )
    dropped_rows = missing + [
        {
            "conversation_id": o.dialogue.conversation_id,
            "persona_ids": [s.persona_id for s in o.dialogue.speakers],
            "scenario": o.dialogue.scenario,
            "reason": o.reason,
            "rounds": o.rounds,
            "turns": [{"speaker_id": p, "text": t} for p, t in (o.draft.turns if o.draft else ())],
        }
        for o in outcomes
        if not o.accepted
    ]
    dropped = pa.Table.from_pylist(
        [{k: r.get(k) for k in DROPPED_SCHEMA.names} for r in dropped_rows], DROPPED_SCHEMA
    )
    stats = _stats(st, outcomes, before, len(missing))
    log.info(
        "converse: requested=%d accepted=%d rounds=%d%s",
        stats["requested"],
        stats["accepted"],
        stats["rounds"],
        f"; short by {stats['shortfall']:.0f}: attempt cap ({cfg.max_attempts} x "
        f"{cfg.max_rounds} rounds) reached for {stats['stopped.attempt_cap']:.0f} pairs, "
        f"{stats['stopped.unknown_persona']:.0f} pairs name unknown personas"
        if stats["shortfall"]
        else "",
    )
    return ConverseResult(table, reviews, dropped, stats, pool)
