"""LLM judges of the conversation critic mixture, and the stage's prompt templates.

The judges (critic role) cover what rules cannot: persona faithfulness (the APC idea of
active and passive constraints: each fact the conversation uses is entailed, neutral or
contradicted, and no line contradicts any fact of either speaker), naturalness (would a
reader tell it is machine-written), coherence and engagement.

Decisions:
- `judges="combined"` (default) asks one critic call for all four scores and notes;
  `"separate"` asks one call per judge. Either way each judge is its own `Verdict` and its
  own `reviews` row, so the mixture stays inspectable per expert. Measured on the
  embedded model (`benchmarks/converse.py --compare-judges`, 4 drafts, 2026-11-24):
  combined = 1 call and 608 tokens per conversation, separate = 4 calls and 1,198 tokens,
  no invalid replies either way. Combined is the default for cost. Neither is a
  trustworthy judge at 0.5B: combined scored every (poor) draft 5/5/5/5; separate gave
  faithfulness 1 to all four and engagement 1 to three; mean absolute difference between
  the two ways: faithfulness 4.0, engagement 3.0, coherence 0.25, naturalness 0.
  Use a stronger critic endpoint for judging that matters.
- Fact ids are short (A1.., B1..) and enumerated in the reply schema, so the grammar of
  a llama.cpp server only lets the judge name facts that exist; the reply is validated
  too (`check_fact_ids`): an unknown id, or a fact both entailed and contradicted, is a
  malformed reply, re-asked and then recorded like any other.
- Faithfulness asks for two id lists (entailed, contradicted) over every fact of both
  speakers rather than one label per fact: the per-fact labels are derived
  (`faithfulness_verdict`) for the facts the conversation uses (`used_fact_ids`, lexical),
  a used fact in neither list being `neutral`. Lists keep the reply short for a small
  model, and the judge is not told which facts were detected, so its answer stays an
  independent check of the lexical detector. The labels, and the facts the judge named
  outside the used set, go to the review row's `details` (JSON).
- A judge that gives no valid reply does not block the item (as in `critic.LlmJudge`):
  its verdict has `score=None`, `passed=True` and the reason in `error`.
- The mixture's acceptance rule is configurable: every expert passes (`all_pass`), or
  every deterministic gate passes and the weighted mean of the judges' scores reaches
  `accept_threshold` (`weighted`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from personafoundry.config import ConverseConfig
from personafoundry.conversation_critics import Dialogue, Draft, Fact, Speaker, used_fact_ids
from personafoundry.critic import Verdict
from personafoundry.llm import LlmClient
from personafoundry.paths import SEEDS_DIR

PROMPTS_DIR = SEEDS_DIR / "prompts" / "converse"
JUDGES = ("faithfulness", "naturalness", "coherence", "engagement")


# -- prompts ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prompt:
    """A versioned prompt template (`seeds/prompts/converse/<name>.toml`, `$name` slots)."""

    name: str
    version: str
    system: str
    user: str

    def render(self, **values: Any) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": Template(self.system).substitute(values).strip()},
            {"role": "user", "content": Template(self.user).substitute(values).strip()},
        ]


def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    data = tomllib.loads((directory / f"{name}.toml").read_text(encoding="utf-8"))
    return Prompt(name, data["version"], data["system"], data["user"])


# -- LLM judges ---------------------------------------------------------------------------
def transcript(draft: Draft, d: Dialogue) -> str:
    return "\n".join(f"{d.speaker(pid).label}: {text}" for pid, text in draft.turns)


def fact_keys(d: Dialogue) -> dict[str, tuple[Speaker, Fact]]:
    """Short ids (A1.., B1..) the judges answer with, mapped to speaker and fact."""
    return {
        f"{tag}{n}": (s, f)
        for tag, s in zip("AB", d.speakers, strict=True)
        for n, f in enumerate(s.facts, 1)
    }


def facts_block(d: Dialogue) -> str:
    return "\n".join(f"{key} ({s.label}): {f.statement}" for key, (s, f) in fact_keys(d).items())


def _fact_list_type(d: Dialogue) -> Any:
    keys = tuple(fact_keys(d)) or ("A1",)
    return list[Literal[keys]]  # type: ignore[valid-type]


def check_fact_ids(entailed: list[str], contradicted: list[str], d: Dialogue) -> None:
    """Reject a faithfulness reply that names unknown facts or calls one fact both ways."""
    keys = fact_keys(d)
    unknown = sorted({k for k in [*entailed, *contradicted] if k not in keys})
    if unknown:
        known = ", ".join(keys) or "none"
        raise ValueError(f"unknown fact ids {unknown}: name only ids of the fact list ({known})")
    both = sorted(set(entailed) & set(contradicted))
    if both:
        raise ValueError(f"fact ids {both} are both entailed and contradicted: list each once")


def faithfulness_verdict(
    entailed: list[str], contradicted: list[str], note: str, draft: Draft, d: Dialogue
) -> Verdict:
    """APC-style verdict with a label per used fact; any contradicted fact fails.

    Active constraint: each fact the conversation uses is `entailed`, `contradicted` or
    `neutral` (touched, but the judge found it neither stated nor denied). Passive
    constraint: no line contradicts any fact of either speaker, used or not. Score: 1 on a
    contradiction; else 3 + 2 x the share of used facts entailed (4 when none is used),
    so a neutral fact lowers the score but is not a failure.
    """
    keys = fact_keys(d)
    entailed_ids = {keys[k][1].fact_id for k in entailed}
    contradicted_ids = {keys[k][1].fact_id for k in contradicted}
    used = used_fact_ids(draft, d)
    labels = {fid: _fact_label(fid, entailed_ids, contradicted_ids) for fid in used}
    order = [f.fact_id for _, f in keys.values()]
    details = {
        "used": labels,
        "unused_entailed": [f for f in order if f in entailed_ids and f not in labels],
        "unused_contradicted": [f for f in order if f in contradicted_ids and f not in labels],
    }
    if contradicted:
        speaker, fact = keys[contradicted[0]]
        feedback = f"contradicts {speaker.label}'s fact {fact.statement!r}; {note}".strip("; ")
        return Verdict("faithfulness", 1.0, False, feedback, details=details)
    share = sum(label == "entailed" for label in labels.values()) / len(labels) if labels else 0.5
    score = round(3.0 + 2.0 * share, 2)
    return Verdict("faithfulness", score, True, note or "consistent", details=details)


def _fact_label(fact_id: str, entailed: set[str], contradicted: set[str]) -> str:
    if fact_id in contradicted:
        return "contradicted"
    return "entailed" if fact_id in entailed else "neutral"


def _panel_model(d: Dialogue) -> type[BaseModel]:
    ids, note = _fact_list_type(d), (str, Field(max_length=160))
    score = (int, Field(ge=1, le=5))
    return create_model(
        "ConversationReview",
        entailed=(ids, Field(max_length=12)),
        contradicted=(ids, Field(max_length=12)),
        faithfulness_note=note,
        naturalness_note=note,
        naturalness=score,
        coherence_note=note,
        coherence=score,
        engagement_note=note,
        engagement=score,
    )


@dataclass(frozen=True)
class PanelJudge:
    """All four LLM experts in one critic call; each still returns its own verdict."""

    prompt: Prompt
    pass_score: int = 3
    deterministic: bool = False
    name: str = "panel"
    names: tuple[str, ...] = JUDGES

    async def judge_many(
        self, draft: Draft, d: Dialogue, llm: LlmClient, *, seed: int
    ) -> list[Verdict]:
        messages = self.prompt.render(
            facts=facts_block(d), scenario=d.scenario, transcript=transcript(draft, d)
        )
        result = await llm.complete_json(
            "critic", messages, _panel_model(d), seed=seed, max_tokens=360,
            check=lambda r: check_fact_ids(r.entailed, r.contradicted, d),
        )  # fmt: skip
        if not result.ok or result.value is None:
            return [
                Verdict(n, None, True, "judge gave no valid verdict", result.error)
                for n in self.names
            ]
        r: Any = result.value
        verdicts = [faithfulness_verdict(r.entailed, r.contradicted, r.faithfulness_note, draft, d)]
        for name in JUDGES[1:]:
            score = getattr(r, name)
            note = getattr(r, f"{name}_note")
            verdicts.append(Verdict(name, float(score), score >= self.pass_score, note))
        return verdicts


@dataclass(frozen=True)
class FaithfulnessJudge:
    """Separate-call persona faithfulness: entailed and contradicted fact ids, per-fact labels."""

    prompt: Prompt
    deterministic: bool = False
    name: str = "faithfulness"
    names: tuple[str, ...] = ("faithfulness",)

    async def judge_many(
        self, draft: Draft, d: Dialogue, llm: LlmClient, *, seed: int
    ) -> list[Verdict]:
        ids = _fact_list_type(d)
        model = create_model(
            "FaithfulnessReview",
            entailed=(ids, Field(max_length=12)),
            contradicted=(ids, Field(max_length=12)),
            note=(str, Field(max_length=160)),
        )
        messages = self.prompt.render(
            facts=facts_block(d), scenario=d.scenario, transcript=transcript(draft, d)
        )
        result = await llm.complete_json(
            "critic", messages, model, seed=seed, max_tokens=200,
            check=lambda r: check_fact_ids(r.entailed, r.contradicted, d),
        )  # fmt: skip
        if not result.ok or result.value is None:
            return [Verdict(self.name, None, True, "judge gave no valid verdict", result.error)]
        r: Any = result.value
        return [faithfulness_verdict(r.entailed, r.contradicted, r.note, draft, d)]


class QualityReply(BaseModel):
    feedback: str = Field(max_length=160, description="one sentence: what to fix")
    score: int = Field(ge=1, le=5)


RUBRICS = {
    "naturalness": "Does it read like real people talking (5), or could a reader tell it is "
    "machine-written (1)? Say why.",
    "coherence": "Does every turn follow from the one before, with no speaker mix-ups (5), or "
    "is it disjointed (1)?",
    "engagement": "Do both speakers share and ask things so the talk is interesting (5), or is "
    "it flat and generic (1)?",
}


@dataclass(frozen=True)
class QualityJudge:
    """Separate-call judge of one quality with a 1-5 rubric."""

    name: str
    prompt: Prompt
    pass_score: int = 3
    deterministic: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    async def judge_many(
        self, draft: Draft, d: Dialogue, llm: LlmClient, *, seed: int
    ) -> list[Verdict]:
        messages = self.prompt.render(
            quality=self.name, rubric=RUBRICS[self.name], scenario=d.scenario,
            transcript=transcript(draft, d),
        )  # fmt: skip
        result = await llm.complete_json(
            "critic", messages, QualityReply, seed=seed, max_tokens=120
        )
        if not result.ok or result.value is None:
            return [Verdict(self.name, None, True, "judge gave no valid verdict", result.error)]
        r = result.value
        return [Verdict(self.name, float(r.score), r.score >= self.pass_score, r.feedback)]


def llm_judges(mode: str) -> list[Any]:
    """The LLM experts for `ConverseConfig.judges`."""
    if mode == "none":
        return []
    if mode == "combined":
        return [PanelJudge(load_prompt("judge_panel"))]
    quality = load_prompt("judge_quality")
    return [FaithfulnessJudge(load_prompt("judge_faithfulness"))] + [
        QualityJudge(name, quality) for name in JUDGES[1:]
    ]


def mixture_accepts(verdicts: list[Verdict], cfg: ConverseConfig) -> bool:
    """The mixture's acceptance rule: every expert passes, or gates pass + weighted mean."""
    if cfg.acceptance == "all_pass":
        return all(v.passed for v in verdicts)
    gates = [v for v in verdicts if v.expert not in JUDGES]
    scored = [v for v in verdicts if v.expert in JUDGES and v.score is not None]
    if not all(v.passed for v in gates):
        return False
    if not scored:
        return True
    weight = {v.expert: cfg.weights.get(v.expert, 1.0) for v in scored}
    mean = sum(weight[v.expert] * v.score for v in scored) / max(1e-9, sum(weight.values()))  # type: ignore[operator]
    return mean >= cfg.accept_threshold
