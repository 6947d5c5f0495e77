"""Conversation turns (turn-by-turn and one-call) for `tests/plausible.py`.

A turn obeys `personafoundry.conversation_critics`: no speaker labels or colons, no
placeholders, one of the speaker's own facts per turn with fillers every few words (used
by its content words, never copied verbatim), small talk and questions that never repeat
within a conversation, a wrap-up that ends the last turn with punctuation.
"""

from __future__ import annotations

from typing import Any

from plausible import QUESTIONS, REACTIONS, SMALL_TALK, break_runs, grab, rng_for

GREETINGS = ("Hi {p}, good to see you.", "Hey {p}, fancy running into you here.",
             "Oh hi {p}, how are you doing?", "Hello {p}, nice to finally talk.")  # fmt: skip
CLOSINGS = ("Anyway, I should get going. Talk soon, {p}.", "Well, this was fun, {p}. See you around.",
            "I have to run now, {p}. Take care.")  # fmt: skip
MAX_CHARS = 340  # conversation_drafts.TURN_MAX_CHARS is 360


def compose(label: str, partner: str, facts: list[str], index: int, mine: int, last: bool,
            key: tuple[str, ...], failing: bool) -> str:  # fmt: skip
    """Turn `index` of the conversation `key`; `mine` = how many turns this speaker had."""
    base = rng_for("talk", *key).randrange(997)
    rng = rng_for("turn", *key, index)
    first = partner.split()[0] if partner else "there"
    parts = [GREETINGS[base % len(GREETINGS)].format(p=first) if index == 0
             else REACTIONS[(base + index) % len(REACTIONS)]]  # fmt: skip
    if mine < len(facts):
        parts.append(break_runs(facts[mine], rng))
    else:
        parts.append(SMALL_TALK[(base + index) % len(SMALL_TALK)])
    parts.append(CLOSINGS[base % len(CLOSINGS)].format(p=first) if last
                 else QUESTIONS[(base + index) % len(QUESTIONS)])  # fmt: skip
    text = " ".join(parts)
    while len(text) > MAX_CHARS and len(parts) > 1:
        parts.pop(0 if len(parts) == 3 else -1)
        text = " ".join(parts)
    text = text[:MAX_CHARS]
    if failing:  # an unfilled slot: the placeholders expert rejects it, naming the turn
        text = f"{text[: MAX_CHARS - 30]} Say hi to [name] for me."
    return text


def _facts(text: str) -> list[str]:
    if not text or text.startswith("anything about"):
        return []
    return [f.strip() for f in text.split("; ") if f.strip()]


def turn_reply(system: str, user: str, owner: Any) -> dict[str, Any]:
    """One turn: the speaker sees only itself, its facts and the conversation so far."""
    label = grab(r"speak only as (.+?), in first person", system, "Me")
    partner = grab(r"^You are talking with (.+?)\.$", user)
    scenario = grab(r"^Situation: (.*)$", user)
    facts = _facts(
        grab(r"^About you \(bring one up when it fits, in your own words\): (.*)$", user)
    )
    history = user.split("Conversation so far:\n", 1)[-1].split("\n\nWrite ", 1)[0]
    lines = [ln for ln in history.splitlines() if ln.strip() and not ln.startswith("(nothing")]
    index, mine = len(lines), sum(ln.startswith(("You said", "You:")) for ln in lines)
    key = (scenario, *sorted([label, partner]))
    revised = "An earlier draft was rejected" in user
    failing = index == 0 and owner.failing(revised, "talk", *key)
    last = "This is your last message" in user
    return {"text": compose(label, partner, facts, index, mine, last, key, failing)}


def one_call_reply(schema: dict[str, Any], user: str, owner: Any) -> dict[str, Any] | None:
    """Every turn in one reply; the schema fixes each position's speaker."""
    items = schema.get("properties", {}).get("turns", {}).get("prefixItems") or []
    labels = [i.get("properties", {}).get("speaker", {}).get("const") for i in items]
    if not labels or None in labels:
        return None
    speakers = list(dict.fromkeys(labels))
    facts = {s: _facts(grab(rf"^{s} could mention one of: (.*)$", user)) for s in speakers}
    scenario = grab(r"^Situation: (.*)$", user)
    key = (scenario, *sorted(speakers))
    revised = "An earlier draft was rejected" in user
    turns, counts = [], dict.fromkeys(speakers, 0)
    for i, label in enumerate(labels):
        partner = next((s for s in speakers if s != label), "")
        failing = i == 0 and owner.failing(revised, "talk", *key)
        text = compose(label, partner, facts[label], i, counts[label], i == len(labels) - 1,
                       key, failing)  # fmt: skip
        counts[label] += 1
        turns.append({"speaker": label, "text": text})
    return {"turns": turns}
