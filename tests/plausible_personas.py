"""Persona drafts (and the retired seed-fill reply) for `tests/plausible.py`.

Up to 15 facts (the default ledger asks 10-14). The draft obeys
`personafoundry.persona_critics`: the given opener, the job mentioned, no spouse unless married, no job, car, rent or children for minors, validity years between
birth and the reference year, one concrete first-person sentence per fact.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from plausible import (
    ALLERGENS,
    BRANDS,
    DAYS,
    FIRST,
    FOODS,
    MONTHS,
    PETS,
    PLACES,
    REFERENCE_YEAR,
    SPORTS,
    THINGS,
    _enum_values,
    grab,
    rng_for,
)  # fmt: skip

from schemas.common import US_STATES

CARRIERS = ("Verizon", "T-Mobile", "Mint Mobile", "Visible", "Cricket")
GRADES = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
HIGH = ("ninth", "tenth", "eleventh", "twelfth")
Fact = Callable[[random.Random, "Who"], str]


class Who:
    """What the prompt says about the person."""

    def __init__(self, user: str) -> None:
        openers = re.findall(r'"(My name is ([^".]+)\. I am (\d+) years old and I live in ([^"]+?)\.)"',
                             user)  # fmt: skip
        last = openers[-1] if openers else ("", "", "", "")  # the example person comes first
        self.opener = last[0]
        self.name = grab(r"^- Name: (.*)$", user) or last[1] or "Sam Doe"
        self.first = self.name.split()[0]
        self.age = int(grab(r"^- Age: (\d+)", user) or last[2] or 40)
        self.state = grab(r"^- Lives in: (.*)$", user) or last[3]
        self.work = grab(r"^- Work: (.*)$", user, "none")
        self.married = grab(r"^- Marital status: (.*)$", user).startswith(("married", "separated"))
        self.birth = REFERENCE_YEAR - self.age
        self.job = None
        if not self.work.startswith(("none", "unemployed", "not working", "serves in")):
            self.job = self.work

    def year(self, rng: random.Random, lo_age: int) -> int:
        """A year after the person turned `lo_age`, before the reference year."""
        lo = max(self.birth, min(self.birth + lo_age, REFERENCE_YEAR - 1))
        return rng.randint(lo, max(lo, REFERENCE_YEAR - 1))


def _p(rng: random.Random) -> str:
    return rng.choice(PLACES)


def _n(rng: random.Random) -> str:
    return rng.choice(FIRST)


ADULT: list[tuple[str, Fact]] = [
    (
        "work",
        lambda r, w: (
            f"I have worked at {r.choice(BRANDS)} in {_p(r)} since {w.year(r, 18)}."
            if w.job
            else f"I volunteer at the {_p(r)} public library every {r.choice(DAYS)}."
        ),
    ),
    ("history", lambda r, w: f"I graduated from {_p(r)} High School in {w.birth + 18}."),
    (
        "family",
        lambda r, w: (
            f"My {r.choice(['daughter', 'son'])} {_n(r)} plays {r.choice(SPORTS)} "
            f"at {_p(r)} Middle School."
            if w.age >= 35
            else f"My {r.choice(['sister', 'brother', 'cousin'])} {_n(r)} lives in {_p(r)} with "
            f"{r.randint(2, 4)} cats."
        ),
    ),
    (
        "relationships",
        lambda r, w: (
            f"My friend {_n(r)} and I met at {_p(r)} Community College in {w.year(r, 18)}."
        ),
    ),
    (
        "hobbies",
        lambda r, w: (
            f"I play the {r.choice(THINGS)} with a group called the {_p(r)} "
            f"Ramblers on {r.choice(DAYS)} nights."
        ),
    ),
    (
        "habits",
        lambda r, w: (
            f"I stop at {r.choice(BRANDS)} for coffee every {r.choice(DAYS)} morning before eight."
        ),
    ),
    (
        "preferences",
        lambda r, w: f"My favorite dish is the {r.choice(FOODS)} at {_n(r)}'s Kitchen in {_p(r)}.",
    ),
    ("health", lambda r, w: f"I have been allergic to {r.choice(ALLERGENS)} since {w.year(r, 2)}."),
    (
        "finance",
        lambda r, w: (
            f"I pay ${r.randint(25, 95)} a month for my phone plan with {r.choice(CARRIERS)}."
        ),
    ),
    ("location", lambda r, w: _moved(r, w)),
    (
        "hobbies",
        lambda r, w: f"I ran the {_p(r)} Half Marathon in {r.choice(MONTHS)} {w.year(r, 16)}.",
    ),
    ("habits", lambda r, w: f"I water the tomatoes on my {_p(r)} porch every {r.choice(DAYS)}."),
    ("history", lambda r, w: f"I visited {_p(r)} with my cousin {_n(r)} in {w.year(r, 10)}."),
    (
        "finance",
        lambda r, w: f"I keep ${r.randint(200, 900)} in a {r.choice(BRANDS)} savings account.",
    ),
    ("preferences", lambda r, w: f"My favorite team is the {_p(r)} Comets in the minor leagues."),
]
YOUNG: list[tuple[str, Fact]] = [
    ("work", lambda r, w: _school(r, w)),
    (
        "family",
        lambda r, w: (
            f"My {r.choice(['brother', 'sister'])} {_n(r)} shares a room with me on {_p(r)} Road."
        ),
    ),
    (
        "family",
        lambda r, w: (
            f"Our {r.choice(['dog', 'cat'])} {r.choice(PETS)} sleeps at the end of my bed."
        ),
    ),
    (
        "hobbies",
        lambda r, w: f"I play {r.choice(SPORTS)} with the {_p(r)} Tigers on {r.choice(DAYS)}s.",
    ),
    (
        "preferences",
        lambda r, w: f"My favorite food is the {r.choice(FOODS)} at {_n(r)}'s Kitchen.",
    ),
    ("relationships", lambda r, w: f"My best friend {_n(r)} lives next to the {_p(r)} playground."),
    ("habits", lambda r, w: f"I read a {_p(r)} Library book before bed every night."),
    ("health", lambda r, w: f"I have been allergic to {r.choice(ALLERGENS)} since {w.year(r, 1)}."),
    ("history", lambda r, w: f"I learned to swim at the {_p(r)} YMCA in {w.year(r, 4)}."),
    ("location", lambda r, w: f"My family moved to {_p(r)} from {_p(r)} in {w.year(r, 0)}."),
    ("family", lambda r, w: f"My grandma {_n(r)} visits us from {_p(r)} every {r.choice(MONTHS)}."),
    ("hobbies", lambda r, w: f"I collect {_p(r)} baseball cards in a green shoebox."),
    ("preferences", lambda r, w: f"My favorite color is blue like my {_p(r)} backpack."),
    ("history", lambda r, w: f"I visited the {_p(r)} Zoo with my aunt {_n(r)} in {w.year(r, 2)}."),
]


def _school(r: random.Random, w: Who) -> str:
    if w.age < 5:
        return f"I go to {_n(r)}'s Daycare on {r.choice(DAYS)}s."
    if w.age < 14:
        grade = "kindergarten" if w.age == 5 else f"{GRADES[w.age - 6]} grade"
        return f"I am in {grade} at {_p(r)} {'Elementary' if w.age < 12 else 'Middle School'}."
    return f"I am in {HIGH[min(w.age - 14, 3)]} grade at {_p(r)} High School."


def _moved(r: random.Random, w: Who) -> str:
    start = w.year(r, 5)
    end = r.randint(min(start + 1, REFERENCE_YEAR - 1), REFERENCE_YEAR - 1)
    return f"I lived in {_p(r)} from {start} to {max(end, start)}."


NARRATIVE = (
    "On weekends I like to explore {place} with a thermos of tea.",
    "My mornings start early with a long walk past {place} Park.",
    "I keep a shelf of well-worn cookbooks and try a new {food} recipe most weeks.",
    "Friends call me when they need help moving furniture.",
    "I am saving up for a road trip to {place} next summer.",
    "Music is always on in my kitchen, usually something with a {thing}.",
    "I still write letters by hand to my cousins in {place}.",
)


def job_words(work: str) -> str:
    """A profile job title read aloud: before any comma, its head noun singular."""
    head = work.split(",")[0].strip()
    if " of " in head:
        noun, rest = head.split(" of ", 1)
        return f"{_singular(noun)} of {rest}".lower()
    return _singular(head).lower()


def _singular(text: str) -> str:
    words = text.split()
    if words and words[-1].endswith("s") and not words[-1].endswith("ss"):
        words[-1] = words[-1][:-3] + "y" if words[-1].endswith("ies") else words[-1][:-1]
    return " ".join(words)


def narrative(user: str, who: Who, rng: random.Random, wrong_age: bool) -> list[str]:
    opener = who.opener or (
        f"My name is {who.name}. I am {who.age} years old and I live in {who.state}."
    )
    if wrong_age:
        # not 58: the example person's age, which the ledger expert flags as a copy
        wrong = who.age + (12 if who.age + 12 != 58 else 14)
        opener = opener.replace(f"I am {who.age} years", f"I am {wrong} years")
        # one sentence with the name: `tidy_candidate` never cuts the opening sentence, so
        # only a revision fixes the age
        opener = opener.replace(". I am", ", and I am", 1)
    parts = [opener]
    if who.job:
        job = job_words(who.job)
        parts.append(f"I work as {'an' if job[:1] in 'aeiou' else 'a'} {job}.")
    elif who.age < 16:
        parts.append(f"I spend my days at school and with my family in {_p(rng)}.")
    else:
        parts.append("Right now I spend my days on errands, family and a few small projects.")
    if who.married and who.age >= 18:
        parts.append(f"My {rng.choice(['wife', 'husband'])} {_n(rng)} and I share a home.")
    pool = NARRATIVE if who.age >= 16 else NARRATIVE[:2]
    for template in rng.sample(pool, 2):
        parts.append(template.format(place=_p(rng), food=rng.choice(FOODS),
                                     thing=rng.choice(THINGS)))  # fmt: skip
    traits = [t.strip() for t in grab(r"^- Personality: (.*)$", user).split(",") if t.strip()]
    if len(traits) >= 2:
        parts.append(f"People say I come across as {traits[0]} and {traits[1]}.")
    return parts


def persona_draft(schema: dict[str, Any], user: str, failing: bool) -> dict[str, Any]:
    who = Who(user)
    rng = rng_for("persona", who.name, who.age, who.state)
    facts_schema = schema.get("properties", {}).get("facts", {})
    lo, hi = facts_schema.get("minItems", 6), facts_schema.get("maxItems", 10)
    count = min(hi, max(lo, 7))
    allowed = _enum_values(facts_schema, schema) or ["history"]
    pool = list(ADULT if who.age >= 18 else YOUNG)
    rng.shuffle(pool)
    pool.sort(key=lambda item: item[0] != "work")  # school or work first: always relevant
    facts = []
    for category, make in pool[:count]:
        facts.append({
            "category": category if category in allowed else allowed[0],
            "statement": make(rng, who),
        })  # fmt: skip
    sentences = narrative(user, who, rng, failing)
    spec = schema.get("properties", {}).get("narrative", {})
    if spec.get("type") == "array":  # prompts v6: a list of sentences, the opener first
        return {"narrative": sentences[: spec.get("maxItems", 6)], "facts": facts}
    return {"narrative": " ".join(sentences), "facts": facts}


FEMALE = re.compile(r"\b(she|her|woman|mother|mom|wife|girl|daughter|grandmother)\b", re.IGNORECASE)
MALE = re.compile(r"\b(he|his|him|man|father|dad|husband|boy|son|grandfather)\b", re.IGNORECASE)


def seed_fill(user: str) -> dict[str, Any]:
    """Demographics stated in a seed text, else plausible ones drawn from its words."""
    text = grab(r'Description of a person:\n"(.*)"', user) or user
    rng = rng_for("seed", text)
    age_text = grab(r"\b(\d{1,3})[- ]years?[- ]old\b", text) or grab(
        r"\bI(?:'m| am) (\d{1,3})\b", text
    )
    age = int(age_text) if age_text and int(age_text) <= 110 else rng.randint(24, 68)
    female, male = len(FEMALE.findall(text)), len(MALE.findall(text))
    sex = "Female" if female > male else "Male" if male > female else rng.choice(["Female", "Male"])
    states = [s for s in US_STATES if re.search(rf"\b{re.escape(s)}\b", text)]
    state = states[0] if states else rng.choice(["Ohio", "Texas", "Oregon", "Georgia", "Iowa"])
    job = grab(r"\bI work as an? ([a-z][a-z ]{2,40}?)(?: at | in | for |[.,]|$)", text) or grab(
        r"\bI(?:'m| am) an? ([a-z]+(?: [a-z]+)?) (?:at|in|for)\b", text
    )
    return {"age": age, "sex": sex, "state": state, "occupation": job if age >= 16 else ""}
