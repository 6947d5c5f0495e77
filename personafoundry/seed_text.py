"""Read what a seed persona's text states about its demographics, deterministically.

`parse_seed_text` applies the wording cues of `seeds/census/seed_cues.toml` (data, with its
assumptions written there) plus the demographics critic's own lexicons
(`personafoundry.persona_critics`), so a parsed seed never fails that critic;
`with_file_values` merges the seed file's columns, which win, and reports where text and
columns disagree. `personafoundry.census_condition` then samples every demographic not
stated from the census joint conditionally on what is.

Decision: no LLM call. The 0.5B model guessed ages and states at random; a regex over
data is reproducible and testable, and a field whose cues conflict is left unstated.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from personafoundry.paths import SEEDS_DIR
from personafoundry.persona_critics import (  # the critic's lexicons: parse and check agree
    _HAS_SPOUSE,
    _INCOME_RE,
    _MINOR_RULES,
    _NO_SPOUSE,
    _PER_YEAR,
    _SEX_WORDS,
    stated_ages,
    stated_states,
)
from personafoundry.persona_fill import reference_year
from schemas.common import US_STATES

CUES_PATH = SEEDS_DIR / "census" / "seed_cues.toml"
MARRIED = "Now married, except separated"
NOT_MARRIED = ("Never married", "Separated", "Widowed", "Divorced")
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I've|I'd|my|me|mine)\b")
_DECADE_RE = re.compile(r"\bin (?:my|her|his) (?:early |mid-?|late )?(\w+?)s?\b", re.IGNORECASE)
_HEAD_END = re.compile(r"\b(?:who|that|whose|which|with)\b|[,.;!?]")
_WORK_AS = re.compile(
    r"\b(?:I work|works?) as an? ((?:[\w'-]+ ){0,3}?[\w'-]+?)(?=\s+(?:at|in|for|on|and|who)\b|[.,;!?]|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Stated:
    """What a seed states; None = not stated. Sets (tuples) list every allowed label."""

    age_min: int = 0
    age_max: int | None = None
    sex: str | None = None
    race_ethnicity: str | None = None
    state: str | None = None
    education: tuple[str, ...] | None = None
    marital_status: tuple[str, ...] | None = None
    employment_status: str | None = None
    soc_code: str | None = None
    past_soc_code: str | None = None  # a former job: its education/age needs still hold
    occupation: str | None = None
    household_income: int | None = None
    income_min: int | None = None
    household_income_bracket: str | None = None
    cues: tuple[str, ...] = field(default=())  # which fields the text stated (for stats)


@dataclass(frozen=True)
class Cues:
    """`seeds/census/seed_cues.toml`, compiled."""

    cues: tuple[dict[str, Any], ...]
    occupations: tuple[tuple[str, re.Pattern[str], re.Pattern[str] | None], ...]
    job_context: str
    past_job: re.Pattern[str]
    state_skip: re.Pattern[str]
    place_re: re.Pattern[str]
    places: dict[str, str]
    decades: dict[str, int]


@cache
def load_cues() -> Cues:
    data = tomllib.loads(CUES_PATH.read_text("utf-8"))
    ci = re.IGNORECASE
    cues = tuple({**c, "re": re.compile(c["pattern"], ci)} for c in data["cue"])
    occupations = tuple(
        (
            o["soc"],
            re.compile(rf"\b(?:{o['nouns']})\b", ci if o["nouns"] != o["nouns"].upper() else 0),
            re.compile(o["verbs"], ci) if o.get("verbs") else None,
        )
        for o in data["occupation"]
    )
    places = {**{s: s for s in US_STATES}, **data["cities"]}
    alternatives = "|".join(re.escape(p) for p in sorted(places, key=len, reverse=True))
    return Cues(
        cues, occupations, data["job_context"], re.compile(data["past_job"], ci),
        re.compile(data["state_skip"], ci),
        re.compile(rf"{data['state_context']}({alternatives})\b"), places,
        {k: int(v) for k, v in data["decades"].items()},
    )  # fmt: skip


def _one(values: list[str]) -> str | None:
    """The value if every cue agrees; conflicting cues leave the field unstated."""
    return values[0] if values and len(set(values)) == 1 else None


def _allowed(sets: list[tuple[str, ...]]) -> tuple[str, ...] | None:
    if not sets:
        return None
    keep = set(sets[0]).intersection(*map(set, sets[1:]))
    return tuple(v for v in sets[0] if v in keep) or None


def _is_self(text: str, start: int) -> bool:
    """False for "my grandmother": the word names someone else."""
    return not re.search(r"\b(?:my|our|her|his|their|a friend's)\s+$", text[:start], re.IGNORECASE)


def parse_seed_text(text: str, soc_by_title: dict[str, str] | None = None) -> Stated:
    """What `text` states about the person's demographics (see `seeds/census/seed_cues.toml`).

    `soc_by_title` (lower-case OEWS title -> SOC) lets "I work as a barista" name an OEWS
    occupation the cue table does not list.
    """
    cues = load_cues()
    third = not _FIRST_PERSON.search(text)
    votes: dict[str, list[Any]] = {}
    age_lo, age_hi = 0, None

    def vote(field_name: str, value: Any) -> None:
        votes.setdefault(field_name, []).append(value)

    for cue in cues.cues:
        if cue.get("third_person_only") and not third:
            continue
        for m in cue["re"].finditer(text):
            if cue.get("self_only") and not _is_self(text, m.start()):
                continue
            if cue["field"] == "age":
                if cue.get("group_is_age"):
                    said = int(m.group(m.lastindex or 1))
                    vote("age", (said, said))
                else:
                    vote("age", (cue.get("age_min", 0), cue.get("age_max")))
            else:
                vote(cue["field"], tuple(cue["values"]) if "values" in cue else cue["value"])
    for age in stated_ages(text, reference_year()):
        vote("age", (age, age))
    for m in _DECADE_RE.finditer(text):
        word = m.group(1).lower()
        decade = cues.decades.get(word) or cues.decades.get(word + "s")
        if decade is None and word.isdigit() and len(word) == 2 and word.endswith("0"):
            decade = int(word)
        if decade:
            vote("age", (decade, decade + 9))
    for limit, pattern, _ in _MINOR_RULES:
        if pattern.search(text):
            vote("age", (limit, None))
    for sex, words in _SEX_WORDS.items():
        if re.search(
            rf"\bI(?:'m| am) (?:an?|the) (?:[\w-]+ ){{0,2}}(?:{words})\b", text, re.IGNORECASE
        ):
            vote("sex", sex)
    if _HAS_SPOUSE.search(text):
        vote("marital_status", (MARRIED,))
    if _NO_SPOUSE.search(text):
        vote("marital_status", NOT_MARRIED)
    for state in _states(text, cues):
        vote("state", state)
    for age_range in votes.get("age", []):
        age_lo = max(age_lo, age_range[0])
        if age_range[1] is not None:
            age_hi = age_range[1] if age_hi is None else min(age_hi, age_range[1])
    if age_hi is not None and age_lo > age_hi:  # conflicting ages: leave the age unstated
        age_lo, age_hi = 0, None
    employment = _one(votes.get("employment_status", []))
    soc, past_soc = _job(text, third, cues, soc_by_title or {})
    if employment in ("Retired", "Unemployed", "Not in labor force"):
        soc, past_soc = None, past_soc or soc
    if soc and employment is None:
        employment = "Employed"
    income, income_min = _income(text)
    return Stated(
        age_min=age_lo, age_max=age_hi, sex=_one(votes.get("sex", [])),
        race_ethnicity=_one(votes.get("race_ethnicity", [])), state=_one(votes.get("state", [])),
        education=_allowed(votes.get("education", [])),
        marital_status=_allowed(votes.get("marital_status", [])),
        employment_status=employment, soc_code=soc, past_soc_code=past_soc,
        household_income=income,
        income_min=income_min,
        cues=tuple(sorted({*votes, *(["soc_code"] if soc else [])})),
    )  # fmt: skip


def _states(text: str, cues: Cues) -> set[str]:
    found = set(stated_states(text))
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if cues.state_skip.search(sentence):
            continue
        found |= {cues.places[m.group(1)] for m in cues.place_re.finditer(sentence)}
    return found


def _job(
    text: str, third: bool, cues: Cues, soc_by_title: dict[str, str]
) -> tuple[str | None, str | None]:
    """(SOC of the current job, SOC of a past job) the text names, if any.

    A past job ("a retired chemistry teacher") sets no occupation, but its education and
    age requirements still hold for the person.
    """
    head = text[: m.start()] if third and (m := _HEAD_END.search(text)) else text
    past = None
    for soc, nouns, verbs in cues.occupations:
        if verbs is not None:
            for m in verbs.finditer(text):
                if not cues.past_job.search(text[max(0, m.start() - 30) : m.start()]):
                    return soc, None
        if third:
            found = [(m, head[: m.start()]) for m in nouns.finditer(head)]
        else:
            context = re.compile(
                cues.job_context + r"((?:[\w-]+\s+){0,3}?)" + nouns.pattern, nouns.flags
            )
            found = [(m, m.group(0)) for m in context.finditer(text)]
        for m, before in found:
            if not cues.past_job.search(before):
                return soc, None
            past = past or soc
    for m in _WORK_AS.finditer(text):
        soc = match_title(m.group(1), soc_by_title)
        if soc and not cues.past_job.search(text[max(0, m.start() - 30) : m.start()]):
            return soc, None
    return None, past


def match_title(phrase: str, soc_by_title: dict[str, str]) -> str | None:
    """SOC of an OEWS title equal to the phrase or its plural ("barista" -> "Baristas")."""
    key = phrase.strip().lower()
    for form in (key, key + "s", key + "es", key[:-1] + "ies" if key.endswith("y") else key):
        if form in soc_by_title:
            return soc_by_title[form]
    return None


def _income(text: str) -> tuple[int | None, int | None]:
    """("we make $X a year" -> household income X) or ("I make $X" -> at least X)."""
    for m in _INCOME_RE.finditer(text):
        try:
            amount = float(m.group(1).replace(",", "").rstrip("."))
        except ValueError:
            continue
        yearly = int(
            amount * (1000 if m.group(2) else 1) * _PER_YEAR.get((m.group(3) or "year").lower(), 1)
        )
        if m.group(0).lower().startswith("we"):
            return yearly, None
        return None, yearly
    return None, None


def with_file_values(stated: Stated, row: dict[str, Any]) -> tuple[Stated, list[str]]:
    """Merge the seed file's columns (they win) into what the text states.

    Returns the merged statement and the conflicts between text and columns.
    """
    conflicts, values = [], {}
    age = row.get("age")
    if age is not None:
        if age < stated.age_min or (stated.age_max is not None and age > stated.age_max):
            span = (
                f"{stated.age_min}+" if stated.age_max is None
                else str(stated.age_min) if stated.age_max == stated.age_min
                else f"{stated.age_min}-{stated.age_max}"
            )  # fmt: skip
            conflicts.append(f"the text implies age {span} but column age is {age}")
        values.update(age_min=age, age_max=age)
    for name in ("sex", "race_ethnicity", "state", "employment_status", "soc_code"):
        given, said = row.get(name), getattr(stated, name)
        if given is not None:
            if (
                said is not None
                and said != given
                and not (name == "employment_status" and stated.soc_code is None)
            ):
                conflicts.append(f'the text says {name} "{said}" but the column says "{given}"')
            values[name] = given
    for name in ("education", "marital_status"):
        given, said = row.get(name), getattr(stated, name)
        if given is not None:
            if said is not None and given not in said:
                conflicts.append(
                    f'the text implies {name} {list(said)} but the column says "{given}"'
                )
            values[name] = (given,)
    for name in ("occupation", "household_income", "household_income_bracket"):
        if row.get(name) is not None:
            values[name] = row[name]
    if row.get("soc_code") and stated.employment_status in ("Retired", "Unemployed"):
        values["employment_status"] = "Employed"
    if (values.get("soc_code") or stated.soc_code) and values.get("employment_status") is None:
        values.setdefault("employment_status", "Employed")
    return replace(stated, **values), conflicts
