"""The generator side of the conversations stage: dialogues, prompts and draft calls.

Decisions:
- `one_call`: one JSON reply holds every turn; the reply schema is a tuple whose items fix
  the speaker of each position (`prefixItems` + `const`), so turns alternate by
  construction and a llama.cpp grammar enforces it.
- `turn_by_turn`: one call per turn; the speaker sees only its own persona, its facts to
  reveal, the conversation so far ("You:" for its own lines) and only the revision lines
  that are not solely about the partner (those may quote the partner's facts).
- Each speaker is asked to reveal `facts_per_speaker` facts drawn per conversation; the
  profile line is the demographics plus the narrative's first two sentences (short
  prompts for a small model).
- On revision, turn-by-turn keeps the turns before the first turn a deterministic
  expert flagged (`first_flagged_turn`) and rewrites the rest; a judge's or a global
  failure rewrites everything.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from personafoundry.config import ConverseConfig
from personafoundry.conversation_critics import TURN_MAX_CHARS, Dialogue, Draft, Fact, Speaker
from personafoundry.conversation_judges import JUDGES, Prompt
from personafoundry.critic import Verdict
from personafoundry.llm import LlmClient, LlmResult

TURN_MAX_TOKENS = 110


class TurnReply(BaseModel):
    text: str = Field(max_length=TURN_MAX_CHARS)


class _Turn(BaseModel):
    speaker: str
    text: str = Field(max_length=TURN_MAX_CHARS)


def profile_line(row: dict[str, Any]) -> str:
    """One short line about a persona: demographics, then two narrative sentences.

    The narrative's "My name is ..." sentence is skipped: the name is given separately, and
    the embedded model pasted the repeated self-introduction into its turns.
    """
    job = row.get("occupation") or row.get("employment_status") or ""
    parts = [f"{row['age']}-year-old" if row.get("age") is not None else "", job.lower()]
    head = " ".join(p for p in parts if p).strip() or "a person"
    where = f" from {row['state']}" if row.get("state") else ""
    sentences = re.split(r"(?<=[.!?])\s+", (row.get("narrative") or "").strip())
    story = [x for x in sentences if not x.lower().startswith("my name is")][:2]
    return f"{head[0].upper()}{head[1:]}{where}. {' '.join(story)[:300]}".strip()


def build_dialogues(
    pairs: pa.Table, personas: pa.Table, cfg: ConverseConfig, rng_seed: int
) -> tuple[list[Dialogue], list[dict[str, Any]]]:
    """Dialogues for the pairs whose personas exist; the others as dropped rows."""
    by_id = {r["persona_id"]: r for r in personas.to_pylist()}
    dialogues, missing = [], []
    for pair in pairs.to_pylist():
        rows = [by_id.get(pid) for pid in pair["persona_ids"]]
        if len(rows) != 2 or None in rows:
            missing.append({**pair, "reason": "unknown_persona", "rounds": 0, "turns": []})
            continue
        rng = random.Random(f"converse:{rng_seed}:{pair['conversation_id']}")
        firsts = [(r.get("name") or "Speaker").split()[0] for r in rows]
        labels = firsts if firsts[0] != firsts[1] else [r.get("name") or "" for r in rows]
        if labels[0] == labels[1]:
            labels = [f"{labels[0]} A", f"{labels[1]} B"]
        speakers = []
        for row, label in zip(rows, labels, strict=True):
            facts = tuple(
                Fact(f["fact_id"], f["category"], f["statement"]) for f in row.get("facts") or []
            )
            focus = tuple(rng.sample(facts, min(cfg.facts_per_speaker, len(facts))))
            name = row.get("name") or label
            speakers.append(
                Speaker(row["persona_id"], name, label, profile_line(row), facts, focus)
            )
        n_turns = rng.randint(cfg.turns_min, max(cfg.turns_min, cfg.turns_max))
        dialogues.append(
            Dialogue(
                pair["conversation_id"], pair["scenario"], (speakers[0], speakers[1]), n_turns, cfg
            )
        )
    return dialogues, missing


def few_shot_messages(exemplars: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Exemplars as earlier user/assistant exchanges in the one-call reply format.

    Shown as prior replies rather than as text inside the prompt: the embedded model
    pasted in-prompt example lines (and the "Example" header) into its own turns.
    """
    messages = []
    for ex in exemplars:
        speakers = list(dict.fromkeys(t["speaker"] for t in ex["turns"]))[:2]
        request = (
            f"Situation: {ex['scenario']}\nWrite their conversation in {len(ex['turns'])} turns, "
            f"starting with {speakers[0]} and alternating."
        )
        turns = [{"speaker": t["speaker"], "text": t["text"]} for t in ex["turns"]]
        messages += [
            {"role": "user", "content": request},
            {"role": "assistant", "content": json.dumps({"turns": turns}, ensure_ascii=False)},
        ]
    return messages


def _facts_text(s: Speaker) -> str:
    return "; ".join(f.statement for f in s.focus) or "anything about your life"


def one_call_model(d: Dialogue) -> type[BaseModel]:
    """Reply model whose JSON schema fixes each position's speaker (alternation by grammar)."""
    labels = [d.speakers[i % 2].label for i in range(d.n_turns)]

    def tuple_schema(schema: dict[str, Any]) -> None:
        schema["properties"]["turns"] = {
            "type": "array",
            "minItems": len(labels),
            "maxItems": len(labels),
            "prefixItems": [
                {
                    "type": "object",
                    "properties": {
                        "speaker": {"const": label},
                        "text": {"type": "string", "maxLength": TURN_MAX_CHARS},
                    },
                    "required": ["speaker", "text"],
                }
                for label in labels
            ],
        }
        schema.pop("$defs", None)

    class OneCallReply(BaseModel):
        model_config = ConfigDict(json_schema_extra=tuple_schema)
        turns: list[_Turn]

    return OneCallReply


async def draft_one_call(
    d: Dialogue, feedback: str, examples: list[dict[str, Any]], llm: LlmClient, prompt: Prompt,
    seed: int,
) -> LlmResult[Draft]:  # fmt: skip
    a, b = d.speakers
    system, user = prompt.render(
        scenario=d.scenario, label_a=a.label, profile_a=a.profile, facts_a=_facts_text(a),
        label_b=b.label, profile_b=b.profile, facts_b=_facts_text(b), n_turns=d.n_turns,
        feedback=feedback,
    )  # fmt: skip
    messages = [system, *few_shot_messages(examples), user]
    ids = {s.label: s.persona_id for s in d.speakers}

    def check(reply: Any) -> None:
        for i, turn in enumerate(reply.turns, 1):
            if turn.speaker not in ids:
                raise ValueError(f"turn {i}: speaker must be one of {sorted(ids)}")

    max_tokens = d.n_turns * TURN_MAX_TOKENS + 40
    r = await llm.complete_json(
        "generator", messages, one_call_model(d), seed=seed, check=check, max_tokens=max_tokens
    )
    if not r.ok or r.value is None:
        return LlmResult(False, None, r.error, r.attempts, r.cached, r.content)
    turns = tuple((ids[t.speaker], t.text.strip()) for t in r.value.turns)  # type: ignore[attr-defined]
    return LlmResult(True, Draft(turns), None, r.attempts, r.cached, r.content)


def _history(d: Dialogue, me: Speaker, turns: list[tuple[str, str]]) -> str:
    """`You said: "..."` / `John said: "..."`: no "Name:" lines for the model to imitate."""
    if not turns:
        return "(nothing yet: you speak first)"
    return "\n".join(
        f'{"You" if pid == me.persona_id else d.speaker(pid).label} said: "{text}"'
        for pid, text in turns
    )


def strip_own_label(text: str, me: Speaker) -> str:
    """Drop a leading "Maria:" / "You:" the model put before its own line (format noise).

    Labels anywhere else, or the partner's name as a label, stay for the critics to catch.
    """
    first = re.escape(me.name.split()[0])
    pattern = rf"^\s*[\*\"']*(?:{re.escape(me.label)}|{first}|you)\s*\**\s*:\s*"
    return re.sub(pattern, "", text, count=1, flags=re.IGNORECASE).strip().strip('"').strip()


async def draft_turn_by_turn(
    d: Dialogue, feedback: str, llm: LlmClient, prompt: Prompt, seed: int,
    keep: tuple[tuple[str, str], ...] = (),
) -> LlmResult[Draft]:  # fmt: skip
    turns = list(keep)
    attempts, cached = 0, True
    for i in range(len(turns), d.n_turns):
        me, other = d.speakers[i % 2], d.speakers[(i + 1) % 2]
        if i == 0:
            instruction = f"Start the conversation with {other.label}."
        elif i == d.n_turns - 1:
            instruction = f"This is your last message: answer {other.label} and wrap up."
        else:
            instruction = f"Answer {other.label}'s last message and keep the talk going."
        messages = prompt.render(
            name=me.name, label=me.label, profile=me.profile, scenario=d.scenario,
            partner=other.label, facts=_facts_text(me),
            history=_history(d, me, turns), instruction=instruction,
            feedback=feedback_for(feedback, me, other),
        )  # fmt: skip
        r = await llm.complete_json(
            "generator", messages, TurnReply, seed=seed + i, max_tokens=TURN_MAX_TOKENS
        )
        attempts, cached = attempts + r.attempts, cached and r.cached
        if not r.ok or r.value is None:
            return LlmResult(False, None, f"turn {i + 1}: {r.error}", attempts, cached, r.content)
        turns.append((me.persona_id, strip_own_label(r.value.text, me)))
    return LlmResult(True, Draft(tuple(turns)), None, attempts, cached, None)


def revision_request(verdicts: list[Verdict]) -> str:
    """The failed experts' feedback, short enough for a small model's prompt."""
    lines = [f"- {v.feedback}" for v in verdicts if not v.passed][:6]
    return "An earlier draft was rejected. Fix these problems:\n" + "\n".join(lines)[:700]


def feedback_for(feedback: str, me: Speaker, other: Speaker) -> str:
    """The revision lines a speaker may see: none that are only about the partner.

    Feedback can quote the partner's facts ("work in e.g. ..."); a speaker in turn-by-turn
    mode must see only its own persona.
    """
    if not feedback:
        return ""
    head, *lines = feedback.splitlines()
    mine = [ln for ln in lines if me.label in ln or other.label not in ln]
    return "\n".join([head, *mine]) if mine else ""


def first_flagged_turn(verdicts: list[Verdict]) -> int:
    """0-based index of the earliest turn a failed gate names; 0 if any failure is global.

    Rule problems are joined by "; " and each names its turn first ("turn 3 (Maria) ...").
    """
    firsts = []
    for v in verdicts:
        if v.passed:
            continue
        for problem in v.feedback.split("; "):
            m = re.match(r"turn (\d+) \(", problem)
            if v.expert in JUDGES or m is None:
                return 0
            firsts.append(int(m.group(1)) - 1)
    return min(firsts, default=0)
