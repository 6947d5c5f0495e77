"""Critic experts for private documents: format, leakage, fact coverage, faithfulness, realism.

Decisions:
- `format` and `leakage` are deterministic (`RuleExpert`): they cost nothing, run first,
  and their feedback is concrete enough for a 0.5B generator to act on ("set total to
  23.50", "the date 2031-02-30 is not within 60 days of 2024-03-02").
- `coverage` checks every planned fact: a lexical match first (every number of the fact
  and most of its content words appear in the document), an LLM fact check otherwise
  (implied facts always go to the LLM). The fact check must quote its evidence, and a
  quote that is not in the document does not count: small judges say "yes" too easily.
  The facts it verifies are written to `DocContext.verified`, which becomes the
  document's `revealed_fact_ids`: only verified facts are claimed as revealed.
- A distractor document must carry its planned detail about the other person (the key
  tokens of `distractor_text`, see `distractor_problems`); the check is part of
  `coverage`, since it too asks "is what was planned in the text?".
- `faithfulness` and `realism` are `LlmJudge`s with short rubrics from
  `seeds/prompts/documents/`. The faithfulness judge sees every fact of the ledger
  (planned ones first): a fact it is not shown is one it cannot defend.
- Text matching (tokens, fact matches, answer spans) lives in `fact_text.py`, shared
  with the probe builder.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from personafoundry.critic import LlmJudge, RuleExpert, Verdict
from personafoundry.doc_catalog import DocType, Prompt
from personafoundry.fact_text import (  # tests and helpers import these from here too
    STOPWORDS,
    answer_span,
    evidence_in,
    lexical_match,
    states_answer,
    stem,
    words,
)
from personafoundry.ids import stable_hash
from personafoundry.llm import LlmClient

DATE_WINDOW_BEFORE = timedelta(days=60)
DATE_WINDOW_AFTER = timedelta(days=90)
PLACEHOLDER = re.compile(
    r"\[[A-Z][A-Za-z ]{1,30}\]|<[a-z][a-z _]{1,30}>|\{[a-z_]+\}|lorem ipsum|\bXXX+\b|\bN/A\b",
    re.IGNORECASE,
)
PASTED_MAX = 0.75
FREE_TEXT_MIN = 20
COPY_NGRAM = 5
GREETING = re.compile(r"\s*(?:hi|hello|hey|dear)\s+([A-Za-z]+)", re.IGNORECASE)
META_TITLE = re.compile(
    r"\b(personal (information|details|communication|email|message|notes?)|self[- ]brief|"
    r"profile|persona|"
    r"document|details about)\b",
    re.IGNORECASE,
)
EXPOSITION = (
    re.compile(r"\b(as|being) an? \d{1,3}[- ]year[- ]old\b", re.IGNORECASE),
    re.compile(r"\bI am an? \d{1,3}[- ]year[- ]old\b", re.IGNORECASE),
    re.compile(
        r"\b(this|the) (document|email|note|receipt|post|entry|log|message)s? "
        r"(\w+ly )?(reveals?|shows?|demonstrates?|proves?|mentions?|states?)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\b(these|the (above|following)) facts\b", re.IGNORECASE),
    re.compile(r"\b(fun fact|fact:|persona)\b", re.IGNORECASE),
)


@dataclass
class DocContext:
    """Everything the critics need about one planned document; `verified` is filled by them."""

    document_id: str
    doc_type: DocType
    persona: dict[str, Any]
    timestamp: datetime
    planned: list[dict[str, Any]]  # facts to reveal, each with an `implied` flag
    counterpart_name: str | None = None
    distractor_text: str | None = None
    verified: dict[str, str] = field(default_factory=dict)  # fact_id -> "match" | "judge"
    repairs: int = 0  # drafts whose derived fields (receipt total) were recomputed

    def render(self, candidate: BaseModel) -> tuple[str, str]:
        return self.doc_type.render_text(candidate.model_dump())


def _parse_day(value: str, kind: str) -> date | None:
    fmt = "%Y-%m-%d %H:%M" if kind == "datetime" else "%Y-%m-%d"
    try:
        return datetime.strptime(value.strip(), fmt).date()
    except ValueError:
        return None


def _date_values(values: dict[str, Any], path: str) -> list[Any]:
    if "[]." not in path:
        return [values.get(path)]
    outer, inner = path.split("[].")
    return [item.get(inner) for item in values.get(outer) or [] if isinstance(item, dict)]


def copied_phrase(values: dict[str, Any], example: dict[str, Any] | None) -> str | None:
    """A `COPY_NGRAM`-word run the draft shares with the catalog example, if any."""
    if not example:
        return None
    mine = words(" ".join(_free_text(values, 0)))
    theirs = words(" ".join(_free_text(example, 0)))
    grams = {tuple(theirs[i : i + COPY_NGRAM]) for i in range(len(theirs) - COPY_NGRAM + 1)}
    for i in range(len(mine) - COPY_NGRAM + 1):
        if tuple(mine[i : i + COPY_NGRAM]) in grams:
            return " ".join(mine[i : i + COPY_NGRAM])
    return None


def format_problems(candidate: BaseModel, ctx: DocContext) -> list[str]:
    """Required text present, dates valid and near the planned date, sums add up, no stubs."""
    values = candidate.model_dump()
    problems = []
    for f in ctx.doc_type.fields:
        if not f.optional and f.type in ("string", "list") and not values.get(f.name):
            problems.append(f"field {f.name!r} is empty; fill it in")
    planned = ctx.timestamp.date()
    lo, hi = planned - DATE_WINDOW_BEFORE, planned + DATE_WINDOW_AFTER
    for path, kind in ctx.doc_type.date_fields():
        for raw in _date_values(values, path):
            day = _parse_day(str(raw or ""), kind)
            shape = "YYYY-MM-DD HH:MM" if kind == "datetime" else "YYYY-MM-DD"
            if day is None:
                problems.append(f"{path} {raw!r} is not a real date in the form {shape}")
            elif not lo <= day <= hi:
                problems.append(f"{path} {raw} is far from the document date; use {planned}")
    if "items_sum_to_total" in ctx.doc_type.checks:
        problems += _sum_problems(values)
    if "greets_recipient" in ctx.doc_type.checks:
        problems += _greeting_problems(values)
    copied = copied_phrase(values, ctx.doc_type.example)
    if copied:
        problems.append(f"the draft copies the example ({copied!r}); write new content")
    _, body = ctx.render(candidate)
    if PLACEHOLDER.search(body):
        problems.append(f"remove the placeholder {PLACEHOLDER.search(body).group(0)!r}")
    if ctx.counterpart_name:
        first = ctx.counterpart_name.split()[0]
        if first.lower() not in body.lower():
            problems.append(f"{ctx.counterpart_name} must appear by name in the document")
    return problems


def _sum_problems(values: dict[str, Any]) -> list[str]:
    items = [i for i in values.get("items") or [] if isinstance(i, dict)]
    prices = [i.get("price") for i in items]
    if any(not isinstance(p, int | float) or p < 0 for p in prices):
        return ["every item needs a price of zero or more"]
    expected = round(sum(prices), 2)
    total = values.get("total")
    if not isinstance(total, int | float) or abs(total - expected) > 0.011:
        return [
            f"total is {total} but the items sum to {expected:.2f}; set total to {expected:.2f}"
        ]
    return []


def _greeting_problems(values: dict[str, Any]) -> list[str]:
    sender = (values.get("sender") or "").split()
    match = GREETING.match(values.get("text") or "")
    if sender and match and match.group(1).lower() == sender[0].lower():
        recipient = (values.get("recipient") or "the recipient").split()[0]
        return [f"the email is from {sender[0]} but greets {sender[0]}; greet {recipient}"]
    return []


def _free_text(value: Any, min_chars: int = FREE_TEXT_MIN) -> list[str]:
    """Every string of a reply longer than `min_chars` (default: longer than a label)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _free_text(v, min_chars)]
    if isinstance(value, list):
        return [s for v in value for s in _free_text(v, min_chars)]
    return [value] if isinstance(value, str) and len(value) > min_chars else []


def _pasted_share(values: dict[str, Any], ctx: DocContext) -> float:
    """Share of the main text's content words (longest string) taken from the planned facts.

    Stems, not exact phrases: "I live in Dallas" pastes the fact "I lived in Dallas" too.
    """
    texts = _free_text(values)
    content = [w for w in words(max(texts, key=len)) if w not in STOPWORDS] if texts else []
    facts = {stem(w) for f in ctx.planned for w in words(f["statement"]) if w not in STOPWORDS}
    if not content or not facts:
        return 0.0
    return sum(stem(w) in facts for w in content) / len(content)


def leakage_problems(candidate: BaseModel, ctx: DocContext) -> list[str]:
    """Exposition no real document contains: introductions, meta talk, pasted fact lists."""
    title, body = ctx.render(candidate)
    problems = [
        f"remove the exposition {m.group(0)!r}" for rx in EXPOSITION if (m := rx.search(body))
    ]
    if META_TITLE.search(title):
        problems.append(f"the title {title!r} describes the person; write a real title")
    if _pasted_share(candidate.model_dump(), ctx) > PASTED_MAX:
        problems.append("the text mostly copies the facts; show them in the document's own words")
    name = (ctx.persona.get("name") or "").strip()
    if name and re.search(rf"\b{re.escape(name)},? (is )?an? ", body):
        problems.append(f"remove the description of {name}: documents do not introduce the owner")
    job = (ctx.persona.get("occupation") or "").strip()
    if job and re.search(rf"\bas an? {re.escape(job)}\b", body, re.IGNORECASE):
        problems.append(f"remove 'as a {job}': real documents do not introduce their owner")
    age = ctx.persona.get("age")
    if age and re.search(rf"\b{age}[- ]year[- ]old\b", body, re.IGNORECASE):
        problems.append(f"do not state the owner's age ({age}-year-old)")
    return problems


class FactCheckReply(BaseModel):
    """The LLM fact check: does the document show the fact, and where."""

    evidence: str = Field(max_length=200, description="exact words from the document, or ''")
    revealed: bool = Field(description="true if the document shows the fact")


@dataclass(frozen=True)
class FactCoverage:
    """Every planned fact is verified in the document; see the module docstring."""

    build_messages: Any  # (fact, ctx, body) -> messages
    name: str = "coverage"
    deterministic: bool = False
    stage: int = 1  # a cheap gate: the realism/faithfulness judges only see covering drafts

    async def check_fact(
        self, fact: dict[str, Any], ctx: DocContext, body: str, llm: LlmClient, seed: int
    ) -> str | None:
        if not fact["implied"] and lexical_match(fact["statement"], body):
            return "match"
        fact_seed = seed + int(stable_hash(fact["fact_id"], 6), 16)
        result = await llm.complete_json(
            "critic", self.build_messages(fact, ctx, body), FactCheckReply, seed=fact_seed
        )
        reply = result.value
        if result.ok and reply is not None and reply.revealed and evidence_in(reply.evidence, body):
            return "judge"
        return None

    async def judge(self, candidate: Any, context: Any, llm: LlmClient, *, seed: int) -> Verdict:
        ctx: DocContext = context
        _, body = ctx.render(candidate)
        methods = await asyncio.gather(
            *(self.check_fact(f, ctx, body, llm, seed) for f in ctx.planned)
        )
        ctx.verified = {f["fact_id"]: m for f, m in zip(ctx.planned, methods) if m}
        missing = [f for f, m in zip(ctx.planned, methods) if not m]
        noise = distractor_problems(body, ctx)
        planned = len(ctx.planned) + bool(ctx.distractor_text)
        if not planned:
            return Verdict(self.name, 5.0, True, "no facts planned")
        score = round(1 + 4 * (1 - (len(missing) + len(noise)) / planned), 2)
        if not missing and not noise:
            return Verdict(self.name, score, True, "every planned fact is shown")
        lines = "; ".join(
            f"{'hint at' if f['implied'] else 'state clearly'}: {f['statement']}" for f in missing
        )
        problems = [f"the document does not show these facts ({lines})"] if missing else []
        return Verdict(self.name, score, False, "; ".join(problems + noise))


def distractor_problems(body: str, ctx: DocContext) -> list[str]:
    """A distractor document must carry its planned detail about the other person.

    Distractors are noise only if they really mention the similar-but-different fact; one
    that drifted into small talk would make retrieval easier, not harder. The test is the
    detail's key tokens (`fact_text.states_answer` on its answer span), else a fact match.
    """
    text = (ctx.distractor_text or "").strip()
    if not text:
        return []
    span = answer_span(text)
    if states_answer(span, body) if span else lexical_match(text, body):
        return []
    who = ctx.counterpart_name or "the other person"
    keep = f" (keep: {span})" if span else ""
    return [f"the document must mention what {who} said: {text!r}{keep}"]


def _fact_lines(facts: list[dict[str, Any]]) -> str:
    return "\n".join(f"- {f['statement']}" for f in facts)


def coverage_messages(
    prompts: dict[str, Prompt], fact: dict[str, Any], ctx: DocContext, body: str
) -> list[dict[str, str]]:
    return prompts["coverage"].messages(
        body=body,
        name=ctx.persona.get("name") or "the owner",
        statement=fact["statement"],
        implied_note=" (a clear hint counts)" if fact["implied"] else "",
    )


def faithfulness_messages(
    prompts: dict[str, Prompt], candidate: BaseModel, ctx: DocContext
) -> list[dict[str, str]]:
    """The faithfulness judge sees every fact of the ledger, the planned ones first.

    All of them, because a contradiction of any fact counts (ledgers hold up to 30; one
    line each, about 500 tokens); planned first, because those are what the document
    talks about and small judges attend to the top of a list.
    """
    facts = [f for f in ctx.persona.get("facts") or [] if f]
    planned = {f["fact_id"] for f in ctx.planned}
    ordered = [f for f in facts if f.get("fact_id") in planned]
    ordered += [f for f in facts if f.get("fact_id") not in planned]
    return prompts["faithfulness"].messages(
        name=ctx.persona.get("name") or "the owner",
        facts=_fact_lines(ordered),
        label=ctx.doc_type.label,
        body=ctx.render(candidate)[1],
    )


def realism_messages(
    prompts: dict[str, Prompt], candidate: BaseModel, ctx: DocContext
) -> list[dict[str, str]]:
    return prompts["realism"].messages(
        label=ctx.doc_type.label, spec=ctx.doc_type.spec, body=ctx.render(candidate)[1]
    )


def build_experts(
    prompts: dict[str, Prompt], accept_threshold: float, llm_judges: bool
) -> list[Any]:
    """The expert panel in running order: gates, then coverage and the LLM judges."""
    pass_score = math.ceil(accept_threshold)
    experts: list[Any] = [
        RuleExpert("format", format_problems),
        RuleExpert("leakage", leakage_problems),
        FactCoverage(lambda f, c, b: coverage_messages(prompts, f, c, b)),
    ]
    if llm_judges:
        experts += [
            LlmJudge("faithfulness", lambda d, c: faithfulness_messages(prompts, d, c), pass_score),
            LlmJudge("realism", lambda d, c: realism_messages(prompts, d, c), pass_score),
        ]
    return experts
