"""Critic experts and the generator-critic loop shared by every LLM stage.

An expert is anything with a `name` and an async `judge(candidate, context, llm, seed)`
returning a `Verdict`. Experts run in stages (`expert_stage`): deterministic gates
(structure, placeholders, repetition, schema) cost nothing and run first, then cheap LLM
gates (`stage = 1`, e.g. fact coverage), then the LLM judges; a later stage runs only when
every earlier verdict passed, since a candidate that fails a gate will be revised anyway
and judging it would pay for tokens that cannot change the outcome.

A candidate is accepted when every verdict passed. Otherwise the generator is asked
again with the failed verdicts' feedback, up to `max_rounds` rounds; an item still
rejected then starts over from a fresh draft (no feedback, new seeds), up to `attempts`
times, so a stage asked for N accepted items gets N unless that attempt cap is reached
(the outcome's `reason` then says so). Rounds are numbered across attempts. Every verdict of
every round becomes a row of the `reviews` table (`schemas/reviews.py`), including
failed generator attempts (`expert="generator"`, with the reason in `error`), so
researchers can study the critic and nothing disappears silently. An expert that has more
to say than a score (e.g. the conversation faithfulness judge's label per used fact) puts
it in `Verdict.details`; `review_row` stores it as the row's `details` JSON string.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, Field

from personafoundry.ids import make_id
from personafoundry.llm import LlmClient, LlmResult

C = TypeVar("C")
GENERATOR_EXPERT = "generator"


@dataclass(frozen=True)
class Verdict:
    """One expert's judgement of one attempt. `score` is 1-5, None when it could not judge.

    `details`: structured findings beyond the score (JSON-serialisable), or None.
    """

    expert: str
    score: float | None
    passed: bool
    feedback: str
    error: str | None = None
    details: dict[str, Any] | None = field(default=None, hash=False)


class Expert(Protocol):
    name: str

    async def judge(
        self, candidate: Any, context: Any, llm: LlmClient, *, seed: int
    ) -> Verdict: ...


@dataclass(frozen=True)
class RuleExpert:
    """A deterministic expert: `check(candidate, context)` returns a list of problems."""

    name: str
    check: Callable[[Any, Any], list[str]]
    deterministic: bool = True

    async def judge(self, candidate: Any, context: Any, llm: LlmClient, *, seed: int) -> Verdict:
        problems = self.check(candidate, context)
        score = 5.0 if not problems else max(1.0, 5.0 - 2 * len(problems))
        return Verdict(self.name, score, not problems, "; ".join(problems) or "ok")


class JudgeReply(BaseModel):
    """What an LLM judge must return; the range is validated here, not trusted to a grammar."""

    feedback: str = Field(description="one or two sentences: what to fix, or why it is good")
    score: int = Field(ge=1, le=5, description="1 = unusable, 3 = acceptable, 5 = excellent")


@dataclass(frozen=True)
class LlmJudge:
    """An LLM expert scoring one quality with a rubric; passes at `pass_score` or above."""

    name: str
    build_messages: Callable[[Any, Any], list[dict[str, str]]]
    pass_score: int = 3
    deterministic: bool = False

    async def judge(self, candidate: Any, context: Any, llm: LlmClient, *, seed: int) -> Verdict:
        result = await llm.complete_json(
            "critic", self.build_messages(candidate, context), JudgeReply, seed=seed
        )
        if not result.ok or result.value is None:
            # A judge that cannot answer does not block the item: the gates still hold.
            return Verdict(self.name, None, True, "judge gave no valid verdict", result.error)
        reply = result.value
        return Verdict(
            self.name, float(reply.score), reply.score >= self.pass_score, reply.feedback
        )


@dataclass(frozen=True)
class LoopOutcome(Generic[C]):
    """Final state of one item after the loop."""

    item_id: str
    accepted: bool
    candidate: C | None
    rounds: int
    verdicts: list[Verdict]
    reviews: list[dict[str, Any]]
    reason: str | None
    cached_calls: int = 0
    calls: int = 0


@dataclass
class LoopSpec:
    """Static parameters of a loop run for one kind of item."""

    item_kind: str
    experts: list[Any]
    max_rounds: int
    model: str
    prompt_version: str
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1


def feedback_text(verdicts: list[Verdict]) -> str:
    """The revision request the generator sees: every failed expert's feedback."""
    lines = [f"- {v.expert}: {v.feedback}" for v in verdicts if not v.passed]
    return "Critics rejected the previous draft:\n" + "\n".join(lines)


def expert_stage(expert: Any) -> int:
    """0 = deterministic gate, 1 = cheap LLM gate (e.g. fact coverage), 2 = LLM judge."""
    return getattr(expert, "stage", 0 if getattr(expert, "deterministic", False) else 2)


async def judge_all(
    candidate: Any, context: Any, experts: list[Any], llm: LlmClient, *, seed: int
) -> list[Verdict]:
    """Run experts stage by stage (gates first); a failed stage skips the later, dearer ones.

    Experts of one stage run concurrently; the stage order is `expert_stage`.
    """
    verdicts: list[Verdict] = []
    for stage in sorted({expert_stage(e) for e in experts}):
        group = [e for e in experts if expert_stage(e) == stage]
        verdicts += await asyncio.gather(
            *(e.judge(candidate, context, llm, seed=seed) for e in group)
        )
        if not all(v.passed for v in verdicts):
            break
    return verdicts


async def refine(
    item_id: str,
    context: Any,
    generate: Callable[[str | None, int], Awaitable[LlmResult[C]]],
    spec: LoopSpec,
    llm: LlmClient,
) -> LoopOutcome[C]:
    """Generate, judge and revise one item until accepted or out of rounds and attempts.

    `generate(feedback, round)` returns the generator's result; `feedback` is None on the
    first round of each attempt and the critics' revision request afterwards.
    """
    reviews: list[dict[str, Any]] = []
    feedback: str | None = None
    candidate: C | None = None
    verdicts: list[Verdict] = []
    reason: str | None = None
    total = spec.max_rounds * spec.attempts
    for round_no in range(1, total + 1):
        if (round_no - 1) % spec.max_rounds == 0:
            feedback = None  # a fresh attempt
        result = await generate(feedback, round_no)
        if not result.ok:
            verdicts = [Verdict(GENERATOR_EXPERT, None, False, "no valid draft", result.error)]
            reason = f"generator failed: {result.error}"
            reviews += _review_rows(item_id, round_no, verdicts, False, spec)
            continue
        candidate = result.value
        seed = spec.seed + round_no
        verdicts = await judge_all(candidate, context, spec.experts, llm, seed=seed)
        accepted = all(v.passed for v in verdicts)
        reviews += _review_rows(item_id, round_no, verdicts, accepted, spec)
        if accepted:
            return LoopOutcome(item_id, True, candidate, round_no, verdicts, reviews, None)
        failed = [v.expert for v in verdicts if not v.passed]
        reason = "rejected by " + ", ".join(failed)
        feedback = feedback_text(verdicts)
    if spec.attempts > 1:
        reason = f"attempt cap reached ({spec.attempts} x {spec.max_rounds} rounds): {reason}"
    return LoopOutcome(item_id, False, candidate, total, verdicts, reviews, reason)


def _review_rows(
    item_id: str, round_no: int, verdicts: list[Verdict], accepted: bool, spec: LoopSpec
) -> list[dict[str, Any]]:
    ids = [make_id("rev", spec.seed, item_id, round_no, v.expert) for v in verdicts]
    return [
        review_row(
            rid, item_id, spec.item_kind, round_no, v, accepted, spec.model, spec.prompt_version
        )
        for rid, v in zip(ids, verdicts, strict=True)
    ]


def review_row(
    review_id: str, item_id: str, item_kind: str, round_no: int, v: Verdict, accepted: bool,
    model: str | None, prompt_version: str | None,
) -> dict[str, Any]:  # fmt: skip
    """One `reviews` row (`schemas/reviews.py`) for one verdict; `details` as sorted JSON."""
    details = None if v.details is None else json.dumps(v.details, sort_keys=True)
    return {
        "review_id": review_id, "item_id": item_id, "item_kind": item_kind, "round": round_no,
        "expert": v.expert, "score": v.score, "passed": v.passed, "feedback": v.feedback,
        "accepted": accepted, "error": v.error, "model": model,
        "prompt_version": prompt_version, "details": details,
    }  # fmt: skip


def score_structs(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """The `critic_scores` column value of an accepted item."""
    return [{"expert": v.expert, "score": v.score, "passed": v.passed} for v in verdicts]
