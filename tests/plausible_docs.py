"""Private documents per catalog type for `tests/plausible.py`.

A document obeys `personafoundry.document_critics`: every planned fact reappears with its
numbers and content words (note style, leading pronoun dropped) inside text of the
document's own (every string that carries a fact has at least as many other content
words: the leakage expert rejects text made mostly of fact words), dates on the planned
day, receipt totals that add up, the counterpart named, the email greeting its recipient,
no placeholders, exposition or meta titles.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from plausible import BRANDS, FIRST, FOODS, PLACES, bullets_after, chunks, grab, rng_for, terse

from personafoundry.document_critics import STOPWORDS, words

SURNAMES = (
    "Alvarez", "Brooks", "Chen", "Dawson", "Ellis", "Fischer", "Garza", "Hughes", "Ibarra",
    "Jensen", "Kowalski", "Lund", "Moreno", "Nakamura", "Osei", "Patel", "Quinn", "Romero",
    "Sato", "Tran", "Underwood", "Vega", "Walsh", "Young", "Zimmer",
)  # fmt: skip
PADS = (
    "Long day, but a good one.", "Need to call the bank tomorrow about the card.",
    "The weather finally turned nice around {place}.", "Grabbed groceries at {brand} on the way home.",
    "The neighbors are painting their fence again.", "Still thinking about that {food} from last week.",
    "Slept badly, too much coffee after lunch.", "Took the long way home past {place}.",
    "Laundry is piling up, weekend problem.", "Found an old photo from {place} in a drawer.",
)  # fmt: skip
SUBJECTS = ("Quick update", "Catching up", "This weekend?", "Long time!", "News from {place}",
            "Following up", "About Saturday", "Some updates from me")  # fmt: skip
REPLIES = ("haha nice", "omg really??", "no way lol", "ok that's awesome", "wait since when",
           "love that for u", "ha of course", "sounds right")  # fmt: skip
SHOPPING = (("Paper towels", 6.49), ("Bananas", 1.89), ("Dish soap", 3.99), ("Bread", 4.29),
            ("Batteries AA", 8.99), ("Sparkling water", 5.49))  # fmt: skip
PLATFORMS = ("Instagram", "Facebook", "Threads", "Bluesky", "Mastodon")
BANKS = ("Chase Checking", "Visa", "Wells Fargo Debit", "Capital One Card", "Ally Savings")


DRESS = {
    "search": ("reviews near me", "open late tonight", "worth it reddit", "best price deals",
               "photos directions parking", "schedule tickets cost"),
    "item": ("gift set", "refill pack", "large size", "combo deal", "travel kit", "value bundle"),
    "payee": ("POS PURCHASE", "ONLINE PMT", "RECURRING DEBIT", "CARD REF", "WEB ORDER"),
    "note": ("felt okay afterwards", "logged after dinner", "remember water", "quick check",
             "mood decent overall", "slept fine later"),
    "chat": ("lol honestly", "cant believe it", "crazy right", "anyway whatever", "so random",
             "btw fyi", "kinda proud tbh"),
    "calendar": ("bring water bottle", "charger and umbrella", "parking behind building",
                 "leave early traffic", "snacks for later", "confirm by text"),
}  # fmt: skip
MAX_FACT_SHARE = 0.5  # the leakage expert rejects above 0.6


def fact_share(text: str, facts: list[str]) -> float:
    """Share of `text`'s content words whose stem is a planned fact's (as the critic counts)."""
    stems = {w[:5] for f in facts for w in words(f) if w not in STOPWORDS}
    content = [w for w in words(text) if w not in STOPWORDS]
    return sum(w[:5] in stems for w in content) / len(content) if content else 0.0


def dress(text: str, facts: list[str], kind: str, rng: Any, limit: int) -> str:
    """`text` plus everyday words of its kind until fact words are at most half of it."""
    extra = rng.sample(DRESS[kind], len(DRESS[kind]))
    while extra and fact_share(text, facts) > MAX_FACT_SHARE:
        candidate = f"{text} {extra.pop()}"
        if len(candidate) > limit:
            break
        text = candidate
    return text


class Plan:
    """What the generator prompt asks for."""

    def __init__(self, user: str) -> None:
        self.name = grab(r"^Owner: (.+?), lives in ", user, "Alex Morgan")
        self.first = self.name.split()[0]
        when = grab(r"^Date: (\d{4}-\d{2}-\d{2} \d{2}:\d{2})\.", user, "2024-06-01 10:00")
        self.when = datetime.strptime(when, "%Y-%m-%d %H:%M")
        self.rng = rng_for("doc", self.name, when, user[:200])
        explicit = bullets_after("It must clearly show these facts", user)
        implied = bullets_after("It should only hint at these", user)
        self.facts = [re.sub(r" \(keep: [^)]*\)$", "", f) for f in explicit + implied]
        self.notes = [terse(f) for f in self.facts]
        cp = grab(r"^The other person in it: (.+?)\.$", user)
        if not cp and "Invent the other person" in user:
            cp = f"{self.rng.choice(FIRST)} {self.rng.choice(SURNAMES)}"
        self.cp = cp
        m = re.search(r'^It mentions this about (.+?), not about .+?: "(.*)"$', user, re.MULTILINE)
        self.distractor = f"{m.group(1).split()[0]} said {m.group(2)}" if m else ""

    @property
    def day(self) -> str:
        return self.when.strftime("%Y-%m-%d")

    def at(self, minutes: int) -> str:
        return (self.when + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M")

    def fill(self, text: str) -> str:
        r = self.rng
        return text.format(place=r.choice(PLACES), brand=r.choice(BRANDS), food=r.choice(FOODS))

    def prose(self, limit: int) -> str:
        """Facts in note style between everyday lines, so they are not a pasted list."""
        pads = [self.fill(p) for p in self.rng.sample(PADS, len(PADS))]
        lines = [f"{n}." for n in self.notes] + ([f"{self.distractor}."] if self.distractor else [])
        text = " ".join([pads.pop(), *lines])
        while pads and fact_share(text, self.facts) > MAX_FACT_SHARE:
            if len(text) + len(pads[-1]) + 1 > limit:
                break
            text = f"{text} {pads.pop()}"
        return text[:limit]

    def pieces(self, size: int, kind: str, dense: bool = False) -> list[str]:
        """Fact notes cut into strings of at most `size` chars, each dressed in its kind.

        `dense`: keep only content words first, as receipts and statements print them.
        """
        notes = self.notes
        if dense:
            notes = [" ".join(w for w in n.split() if w.lower().strip(".,'") not in STOPWORDS)
                     for n in notes]  # fmt: skip
        return [dress(c, self.facts, kind, self.rng, size) for c in chunk_all(notes, size // 2)]


def email(p: Plan) -> dict[str, Any]:
    to = p.cp or f"{p.rng.choice(FIRST)} {p.rng.choice(SURNAMES)}"
    body = p.prose(560)
    return {"sender": p.name, "recipient": to, "date": p.day,
            "subject": p.fill(p.rng.choice(SUBJECTS))[:80],
            "text": f"{greeting(to, p.first)} {body} Talk soon, {p.first}"[:700]}  # fmt: skip


def greeting(to: str, sender_first: str) -> str:
    first = to.split()[0]
    return f"Hi {first}," if first != sender_first else f"Hi there, {first}!"  # namesakes


def text_thread(p: Plan) -> dict[str, Any]:
    other = p.cp or f"{p.rng.choice(FIRST)} {p.rng.choice(SURNAMES)}"
    replies = p.rng.sample(REPLIES, len(REPLIES))
    lines = [{"sender": other.split()[0], "text": "hey what's new with u?"}]
    for n, note in enumerate(p.pieces(150, "chat")[:3]):
        lines += [
            {"sender": p.first, "text": note},
            {"sender": other.split()[0], "text": replies[n]},
        ]
    return {"other": other, "lines": lines[:6]}


def calendar_entry(p: Plan) -> dict[str, Any]:
    notes = dress("; ".join(p.notes), p.facts, "calendar", p.rng, 200)
    return {"event": p.fill("Catch-up at {brand}")[:60], "start": p.at(0),
            "place": p.fill("{brand}, {place}")[:80], "attendees": p.cp or "",
            "notes": notes[:200] or "bring the list"}  # fmt: skip


def receipt(p: Plan) -> dict[str, Any]:
    items = [
        {"name": c, "price": round(p.rng.uniform(2, 40), 2)}
        for c in p.pieces(50, "item", dense=True)
    ]
    items = (items + [{"name": n, "price": v} for n, v in p.rng.sample(SHOPPING, 2)])[:6]
    total = round(sum(i["price"] for i in items), 2)
    return {"merchant": p.rng.choice(BRANDS), "date": p.day, "items": items, "total": total}


def bank_statement(p: Plan) -> dict[str, Any]:
    lines = [{"date": p.day, "payee": c, "amount": -round(p.rng.uniform(5, 90), 2)}
             for c in p.pieces(50, "payee", dense=True)]  # fmt: skip
    lines.append({"date": p.day, "payee": "PAYROLL DEPOSIT", "amount": 1450.0})
    return {"account": f"{p.rng.choice(BANKS)} ending {p.rng.randint(1000, 9999)}"[:50],
            "lines": lines[:6]}  # fmt: skip


def social_post(p: Plan) -> dict[str, Any]:
    tag = "#" + p.rng.choice(PLACES).lower()
    return {"platform": p.rng.choice(PLATFORMS), "date": p.day,
            "text": f"{p.prose(380)} {tag}"[:400]}  # fmt: skip


def journal_note(p: Plan) -> dict[str, Any]:
    return {"date": p.day, "title": p.fill(p.rng.choice(("Tuesday thoughts", "Note to self",
            "After {place}", "Late night", "Sunday list"))), "text": p.prose(600)}  # fmt: skip


def search_history(p: Plan) -> dict[str, Any]:
    queries = [c.lower() for c in p.pieces(80, "search", dense=True)]
    queries.append(p.fill("{food} near {place} open now").lower())
    return {"queries": [{"time": p.at(3 * i), "query": q} for i, q in enumerate(queries[:6])]}


def assistant_chat(p: Plan) -> dict[str, Any]:
    turns = []
    for note in p.pieces(200, "chat")[:3]:
        turns += [
            {"speaker": "User", "text": f"Help me plan my week around this. {note}."},
            {"speaker": "Assistant", "text": "Sure, here is a simple plan around that."},
        ]
    if not turns:
        turns = [
            {"speaker": "User", "text": "Plan three cheap dinners for this week please."},
            {"speaker": "Assistant", "text": "Try tacos, lentil soup and fried rice."},
        ]
    return {"topic": p.fill("week planning around {place}")[:60], "turns": turns[:6]}


def health_log(p: Plan) -> dict[str, Any]:
    entries = [{"date": p.day, "metric": "note", "value": "logged", "note": c}
               for c in p.pieces(80, "note")]  # fmt: skip
    entries.append({"date": p.day, "metric": "steps", "value": f"{p.rng.randint(2000, 14000):,}",
                    "note": ""})  # fmt: skip
    return {"entries": entries[:6]}


def chunk_all(notes: list[str], size: int) -> list[str]:
    return [c for n in notes for c in chunks(n, size)]


WRITERS = {f.__name__: f for f in (email, text_thread, calendar_entry, receipt, bank_statement,
                                   social_post, journal_note, search_history, assistant_chat,
                                   health_log)}  # fmt: skip


def spoil(value: dict[str, Any], doc_type: Any) -> dict[str, Any]:
    """Put a placeholder into the first text field (the format expert rejects it)."""
    for f in doc_type.fields:
        if f.type == "string" and isinstance(value.get(f.name), str):
            limit = (f.max_length or 200) - 8
            value[f.name] = value[f.name][:limit] + " [Name]"
            return value
    return value


def document_reply(doc_type: Any, user: str, owner: Any) -> dict[str, Any] | None:
    writer = WRITERS.get(doc_type.name)
    if writer is None:
        return None
    plan = Plan(user)
    value = writer(plan)
    revised = "A previous draft was rejected." in user
    if owner.failing(revised, "doc", plan.name, plan.day, doc_type.name):
        value = spoil(value, doc_type)
    return value
