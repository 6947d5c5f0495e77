"""A plausible, deterministic "LLM" for `tests/llm_server.py`: every pipeline call, answered well.

`Plausible()` is a server `responder`: it reads the structured-output schema's name (the
pydantic model: `PersonaDraft`, `TurnReply`, `EmailDoc`, `JudgeReply`, ...) and the prompt,
and writes a reply that is schema-valid and passes the stage's deterministic critics, so
most items are accepted in the first round. Anything it does not recognise (or cannot
parse) gets `None`: the server's default schema-valid reply.

Decisions:
- Deterministic: every choice is drawn from a `random.Random` seeded by the item's own
  words (name, scenario, date), never by arrival order, so a rerun, a resume or another
  shard order sends the same requests and gets the same replies (cache keys line up).
- Variety on purpose: facts, small talk and document text come from pools with per-item
  fillers, so the MinHash dedup stage does not see templated near-duplicates.
- Prompts are parsed from the last user message that is not a gateway re-ask (few-shot
  exchanges come before it), with regexes tolerant of missing parts.
- `reject_rate`: that share of items (by a hash of the item) fails a deterministic critic
  on its first draft and is fixed once the critics' feedback arrives (revision path);
  `drop_rate`: that share fails every round (rejected items, `dropped` rows).
- Judges score 4 or 5 with one short sentence; the fact check quotes the best line.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from typing import Any

from personafoundry.doc_catalog import load_catalog

REFERENCE_YEAR = 2023  # seeds/census/rules.toml; persona facts may not postdate it
CATALOG = {doc.model.__name__: doc for doc in load_catalog().values()}
FIRST = (
    "Ava", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade", "Kai", "Lena",
    "Milo", "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tess", "Uma", "Vito", "Wren", "Yara",
    "Zeke", "Abel", "Bea", "Cruz", "Dina", "Emil", "Flor", "Gil", "Hugo", "Iris", "Joel", "Kira",
    "Luz", "Mae",
)  # fmt: skip
PLACES = (
    "Maplewood", "Riverside", "Cedar Hollow", "Pine Bluff", "Oak Ridge", "Elm Park", "Willow Creek",
    "Lakeview", "Stonebridge", "Fairview", "Brookside", "Highland", "Harbor Point", "Sunset Hills",
    "Millbrook", "Ashford", "Greenfield", "Clearwater", "Fox Run", "Bayside", "Kingsley", "Norwood",
    "Silver Lake", "Eastgate", "Marlow", "Pinecrest", "Redwood Flats", "Avalon", "Hartwell",
)  # fmt: skip
BRANDS = (
    "Costco", "Target", "Trader Joe's", "Kroger", "Walgreens", "Publix", "Aldi", "Safeway",
    "Home Depot", "REI", "Wegmans", "Starbucks", "Dunkin", "Chipotle", "Panera", "Subway",
    "Meijer", "Sprouts", "Lowe's", "Petco", "H-E-B", "Menards", "Staples", "Ace Hardware",
)  # fmt: skip
THINGS = (
    "banjo", "ukulele", "cello", "harmonica", "drums", "violin", "mandolin", "accordion",
    "trumpet", "flute",
)  # fmt: skip
SPORTS = (
    "pickleball", "bowling", "softball", "tennis", "volleyball", "curling", "badminton",
    "racquetball",
)  # fmt: skip
FOODS = (
    "pho", "brisket", "tamales", "gumbo", "ramen", "falafel", "pierogi", "paella", "burritos",
    "dumplings",
)  # fmt: skip
PETS = (
    "Biscuit", "Pepper", "Mochi", "Rusty", "Juniper", "Waffles", "Clover", "Ziggy", "Nacho",
    "Olive",
)  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November",
)  # fmt: skip
ALLERGENS = (
    "peanuts", "shellfish", "cats", "pollen", "penicillin", "strawberries", "latex", "bees",
)  # fmt: skip
FILLERS = ("you know", "actually", "honestly", "I mean", "and yes", "no joke")
SMALL_TALK = (
    "The weather has been all over the place this week.", "Traffic on the way here was wild.",
    "This place gets busier every time I come by.", "That coffee smells amazing, by the way.",
    "Have you tried the new bakery around the corner?", "Work has kept me running lately.",
    "The line was out the door earlier.", "Somebody left a dog tied up outside, so cute.",
    "These chairs are more comfortable than they look.", "It feels like spring is late again.",
    "Did you catch the game last night?", "My phone battery is almost dead, of course.",
)  # fmt: skip
REACTIONS = (
    "Oh wow, that sounds great.", "Huh, that is so interesting.", "No way, really?",
    "That makes total sense.", "Ha, love that.", "Oh nice, good for you.",
    "That is a lot, wow.", "Sounds like a busy life.",
)  # fmt: skip
QUESTIONS = (
    "What about you?", "How has your week been?", "Do you get out much on weekends?",
    "Have you lived around here long?", "What keeps you busy these days?",
    "Any big plans coming up?",
)  # fmt: skip


def rng_for(*parts: Any) -> random.Random:
    return random.Random(hashlib.sha256(json.dumps(parts, default=str).encode()).digest())


def share(rate: float, *parts: Any) -> bool:
    """A deterministic coin with P(True) = rate, keyed by `parts`."""
    return rate > 0 and rng_for("share", *parts).random() < rate


def schema_of(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(model name, JSON schema) from either structured-output dialect."""
    fmt = payload.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") or {}
        return spec.get("name") or schema.get("title", ""), schema
    schema = fmt.get("schema") or {}
    return schema.get("title", ""), schema


def prompt_of(payload: dict[str, Any]) -> tuple[str, str]:
    """(system text, the prompt): the last user message that is not the gateway's re-ask.

    Few-shot exchanges may come before the prompt and re-asks after an invalid reply
    (`Your reply was invalid: ...`) after it; revisions append to the prompt itself.
    """
    msgs = [m for m in payload.get("messages") or [] if isinstance(m, dict)]
    system = next((str(m.get("content") or "") for m in msgs if m.get("role") == "system"), "")
    users = [str(m.get("content") or "") for m in msgs if m.get("role") == "user"]
    prompts = [u for u in users if not u.startswith("Your reply was invalid")]
    return system, (prompts or users or [""])[-1]


def grab(pattern: str, text: str, default: str = "") -> str:
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1).strip() if m else default


def bullets_after(head: str, text: str) -> list[str]:
    """The `- item` lines right after the line starting with `head`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(head):
            out = []
            for nxt in lines[i + 1 :]:
                if not nxt.startswith("- "):
                    break
                out.append(nxt[2:].strip())
            return out
    return []


def break_runs(statement: str, rng: random.Random, every: int = 4) -> str:
    """The statement with fillers every `every` words: same content words, no long copy."""
    words = statement.rstrip(".!? ").replace(":", ",").replace(";", ",").split()
    out = []
    for i, w in enumerate(words):
        if i and i % every == 0 and len(words) - i > 1:
            out[-1] = out[-1].rstrip(",") + ","
            out.append(rng.choice(FILLERS) + ",")
        out.append(w)
    return " ".join(out) + "."


def terse(statement: str) -> str:
    """Note style: the leading first-person pronoun dropped (a paraphrase, not a paste)."""
    text = statement.strip().rstrip(".")
    text = re.sub(r"\bas an? ", "as the ", text)  # "as a nurse" reads as an owner intro
    stripped = re.sub(r"^(?:I|My|I'm|I've|We|Our)\s+", "", text)
    if stripped == text and " " in text:
        first, rest = text.split(" ", 1)
        stripped = f"{first} also {rest}"
    return stripped[:1].upper() + stripped[1:]


def chunks(text: str, size: int) -> list[str]:
    out, cur = [], ""
    for w in text.split():
        if cur and len(cur) + 1 + len(w) > size:
            out.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return out + ([cur[:size]] if cur else [])


class Plausible:
    """Server responder; see the module docstring. `handled` counts replies per schema."""

    def __init__(self, reject_rate: float = 0.0, drop_rate: float = 0.0) -> None:
        self.reject_rate, self.drop_rate = reject_rate, drop_rate
        self.handled: Counter[str] = Counter()

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        name, schema = schema_of(payload)
        system, user = prompt_of(payload)
        if name in CATALOG:
            handler = lambda: self.document(CATALOG[name], user)
        else:
            handler = getattr(self, f"on_{name}", None)
            if handler is None:
                self.handled["default"] += 1
                return None
            handler = lambda h=handler: h(schema, system, user, payload)
        value = handler()
        if value is None:
            self.handled["default"] += 1
            return None
        self.handled[name] += 1
        return {"json": value}

    def failing(self, revised: bool, *key: Any) -> bool:
        """Should this attempt fail its critics on purpose (reject/drop knobs)?"""
        if share(self.drop_rate, "drop", *key):
            return True
        return not revised and share(self.reject_rate, "reject", *key)

    # -- personas -------------------------------------------------------------------------
    def on_PersonaDraft(self, schema, system, user, payload):
        revised = any("Critics rejected" in str(m.get("content")) for m in payload["messages"])
        name = grab(r"^- Name: (.*)$", user)
        return plausible_personas.persona_draft(
            schema, user, self.failing(revised, "persona", name)
        )

    def on_SeedDemographics(self, schema, system, user, payload):
        return plausible_personas.seed_fill(user)

    # -- judges ---------------------------------------------------------------------------
    def on_JudgeReply(self, schema, system, user, payload):
        score = 4 + rng_for("judge", user).randint(0, 1)
        return {"feedback": "Consistent and specific; no contradictions found.", "score": score}

    def on_QualityReply(self, schema, system, user, payload):
        return {"feedback": "Reads naturally.", "score": 4 + rng_for("q", user).randint(0, 1)}

    def on_ConversationReview(self, schema, system, user, payload):
        rng, note = rng_for("panel", user), "Natural and consistent."
        return {
            "entailed": entailed_keys(user, schema), "contradicted": [],
            "faithfulness_note": note, "naturalness_note": note, "coherence_note": note,
            "engagement_note": note, "naturalness": 4 + rng.randint(0, 1),
            "coherence": 4 + rng.randint(0, 1), "engagement": 4 + rng.randint(0, 1),
        }  # fmt: skip

    def on_FaithfulnessReview(self, schema, system, user, payload):
        return {"entailed": entailed_keys(user, schema), "contradicted": [], "note": "Consistent."}

    def on_FactCheckReply(self, schema, system, user, payload):
        m = re.search(r'"""\n(.*?)\n"""', user, re.DOTALL)
        body = m.group(1) if m else ""
        claim = grab(r"^Claim about [^:]+: (.*)$", user)
        want = content_words(claim)
        lines = [ln.strip() for ln in re.split(r"\n|(?<=[.!?;])\s+", body) if ln.strip()]
        best, hits = "", 0
        for size in (1, 2, 3):  # a fact spread over consecutive lines (receipt items)
            for i in range(len(lines) - size + 1):
                quote = " ".join(lines[i : i + size])
                n = len(want & content_words(quote))
                if n > hits and len(quote) <= 200:
                    best, hits = quote, n
        revealed = bool(want) and hits * 2 >= len(want)
        return {"evidence": best[:200] if revealed else "", "revealed": revealed}

    # -- conversations --------------------------------------------------------------------
    def on_TurnReply(self, schema, system, user, payload):
        return plausible_talk.turn_reply(system, user, self)

    def on_OneCallReply(self, schema, system, user, payload):
        return plausible_talk.one_call_reply(schema, user, self)

    # -- documents ------------------------------------------------------------------------
    def document(self, doc_type: Any, user: str) -> dict[str, Any] | None:
        return plausible_docs.document_reply(doc_type, user, self)


def content_words(text: str) -> set[str]:
    stop = {"the", "and", "a", "an", "of", "to", "in", "on", "at", "for", "my", "i", "is", "was"}
    return {w[:5] for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in stop and len(w) > 2}


def entailed_keys(user: str, schema: dict[str, Any]) -> list[str]:
    """Fact keys (A1, B2, ...) whose statement's words mostly occur in the transcript."""
    allowed = set(_enum_values(schema.get("properties", {}).get("entailed", {}), schema))
    transcript = user.split("Conversation (", 1)[-1]
    said = content_words(transcript)
    keys = []
    for key, statement in re.findall(r"^([AB]\d+) \([^)]*\): (.*)$", user, re.MULTILINE):
        want = content_words(statement)
        if key in allowed and want and len(want & said) * 2 >= len(want):
            keys.append(key)
    return keys[:12]


def _enum_values(node: Any, root: dict[str, Any]) -> list[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = root
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target.get(part, {})
            return _enum_values(target, root)
        if "enum" in node:
            return [str(v) for v in node["enum"]]
        if "const" in node:
            return [str(node["const"])]
        return [v for sub in node.values() for v in _enum_values(sub, root)]
    if isinstance(node, list):
        return [v for sub in node for v in _enum_values(sub, root)]
    return []


# The stage writers use the helpers above; imported last so either module can load first.
import plausible_docs
import plausible_personas
import plausible_talk

responder = Plausible()
