"""Critic experts for enriched personas: deterministic gates and LLM judges.

The gates run first and cost nothing (see `personafoundry.critic`):
- `ledger`: the fact ledger is well formed. Generated facts number `facts_min`-`facts_max`,
  each is one first-person sentence of 3-30 words (atomic), is not on the generic list,
  is not a near-duplicate of another fact (word-set Jaccard >= `DUPLICATE_JACCARD`), and a
  validity period, if any, is ordered, after birth and not in the future. At least
  `MIN_CONCRETE_SHARE` of the facts carry a concrete anchor (a digit or a capitalised word
  that does not start the sentence), because later stages check documents against them.
- `demographics`: narrative and facts agree with the skeleton: the name (the LLM may not
  rename anyone), a stated age or birth year (+-1 year), the state of residence ("I live
  in <other state>"), work (nobody without an occupation works now; an occupation is
  mentioned), marital status, sex words ("I am a mother"), age limits (no car, spouse or
  children for minors), and a stated income within a factor of `INCOME_FACTOR`.
Seed facts are verbatim user input: they are exempt from the style rules, and a seed that
contradicts its own skeleton is caught before any LLM call (`seed_conflicts`).

The LLM judges (`coherence`: internal non-contradiction; `realism`: specific, believable,
not stereotyped) use the prompts in `seeds/prompts/personas/`. Lexicons are regexes kept
here as constants; the category list is data (`seeds/fact_categories.toml`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from personafoundry.critic import LlmJudge, RuleExpert
from personafoundry.persona_prompts import (
    coherence_messages,
    example_statements,
    load_categories,
    realism_messages,
)
from schemas.common import US_STATES

MIN_WORDS, MAX_WORDS = 3, 30
NARRATIVE_WORDS = (25, 250)
MIN_FIRST_PERSON = 3  # "I"/"my"/"me" tokens a first-person narrative has at the least
DUPLICATE_JACCARD = 0.7
MIN_CONCRETE_SHARE = 0.4
INCOME_FACTOR = 2.5
AGE_TOLERANCE = 1
MIN_NARRATIVE_SENTENCES = 3  # `tidy_candidate` never cuts a narrative below this
MAX_PROBLEMS = 6  # feedback a small model can act on; the rest waits for the next round
JUDGE_PASS_SCORE = 3


def _ci(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_STATE_RE = re.compile(r"\b(" + "|".join(sorted(US_STATES, key=len, reverse=True)) + r")\b")
_DC_RE = _ci(r"\bWashington,? D\.? ?C\.?")
_FIRST_PERSON = _ci(r"\b(I|I'm|I've|I'd|my|me|mine|we|our|us)\b")
_AGE_PATTERNS = (
    _ci(
        r"\bI(?:'m| am)\s+(?:an?\s+)?(\d{1,3})(?:[- ]years?[- ]old)?\b(?![- ]?(?:feet|foot|ft|"
        r"inch|months?|weeks?|days?|miles?|minutes?|hours?|pounds?|lbs?|%|percent|times|kids|"
        r"children|dogs|cats|th|st|nd|rd))"
    ),
    _ci(r"\bmy age is (\d{1,3})\b"),
    _ci(r"\bI turned (\d{1,3})\b"),
)
_YEAR_RE = re.compile(r"\b(?:19|20)\d\d\b")
_BORN_RE = _ci(r"\bI was born in (?:\w+ )?((?:19|20)\d\d)\b")
_LIVE_RE = _ci(r"\bI(?: currently| now)? (?:live|am living|'m living|reside) in ([^.;!?]*)")
_NAME_RE = re.compile(r"\b[Mm]y name is ([A-Z][\w'-]*)")
_WORKS_NOW = _ci(
    r"\b(I work (?:as|at|for|in)|I(?:'m| am) employed|my (?:current )?(?:job|boss|employer|"
    r"coworkers?|paycheck|salary|wages?)\b|I(?:'m| am) (?:a|an) (?:full|part)-time (?!student)|"
    r"I (?:have|hold|got) (?:a|an) (?:new |full-time |part-time |steady )?job\b)"
)
_NOT_WORKING = _ci(r"\bI(?:'m| am) (?:retired|unemployed|out of work|jobless)\b")
_HAS_SPOUSE = _ci(r"\b(my (?:wife|husband|spouse)\b|I(?:'m| am) (?:happily )?married\b)")
_NO_SPOUSE = _ci(r"\b(I(?:'m| am) (?:single|unmarried|divorced|widowed)|never (?:been )?married)\b")
_MINOR_RULES = (  # (age below which it is a problem, regex, what to say)
    (16, _ci(r"\bI (?:drive|own a car)\b|\bmy (?:car|truck)\b"), "drives"),
    (
        18,
        _ci(
            r"\bmy (?:son|daughter|kids|children|grandchild\w*)\b|\bI have (?:a|an|one|two|"
            r"three|four|\d+) (?:\w+ )?(?:child|children|kids?|sons?|daughters?|babies|baby)\b"
        ),
        "has children",
    ),
    (
        18,
        _ci(
            r"\bmy (?:mortgage|rent)\b|\bI (?:own|rent) (?:a|an|my) (?:house|home|apartment|condo)\b"
        ),
        "pays for a home",
    ),
)
_SEX_WORDS = {
    "Female": r"woman|girl|mother|mom|grandmother|grandma|wife|daughter|sister|lady|businesswoman",
    "Male": r"man|boy|father|dad|grandfather|grandpa|husband|son|brother|guy|businessman",
}
_INCOME_RE = _ci(
    r"\b(?:I|we) (?:make|earn|bring in)[^.$]{0,20}\$\s?([\d,.]+)\s*(k|thousand)?\s*"
    r"(?:a |per |an |each )?(year|hour|month|week)?"
)
_PER_YEAR = {"year": 1, None: 1, "month": 12, "week": 52, "hour": 2080}
_GENERIC = tuple(
    _ci(p)
    for p in (
        (
            r"^I (?:like|love|enjoy) (?:music|food|movies|sports|reading|travel(?:ing)?|books|"
            r"nature|animals|people|art|games|my family|my friends|life|fun)\.?$"
        ),
        (
            r"^I am (?:a )?(?:good|nice|kind|friendly|happy|normal|regular|hard-working|"
            r"hardworking)(?: person)?\.?$"
        ),
        r"^I have (?:a )?(?:family|friends|hobbies|a job)\.?$",
        r"\b(?:lorem|placeholder|\[name\]|\{|\})",
    )
)
_SENTENCE_END = re.compile(r"(\w+)([.!?])\s+[A-Z]")
_ABBREVIATIONS = {"st", "dr", "mr", "mrs", "ms", "jr", "sr", "mt", "ft", "ave", "no", "vs", "m"}
_STOP = {"and", "other", "all", "workers", "occupations", "except", "the", "of", "for", "with"}


@dataclass(frozen=True)
class Fact:
    """One ledger entry before it gets its `fact_id`; `seed` marks verbatim seed sentences."""

    category: str
    statement: str
    valid_from: int | None = None
    valid_to: int | None = None
    seed: bool = False


_PERIOD_PATTERNS = (  # (regex, group of valid_from, group of valid_to); first match wins
    (_ci(r"\bfrom ((?:19|20)\d\d) (?:to|until|till|through|-) ((?:19|20)\d\d)\b"), 1, 2),
    (_ci(r"\bbetween ((?:19|20)\d\d) and ((?:19|20)\d\d)\b"), 1, 2),
    (_ci(r"\b((?:19|20)\d\d) ?[-\u2013] ?((?:19|20)\d\d)\b"), 1, 2),
    (_ci(r"\bsince ((?:19|20)\d\d)\b"), 1, None),
    (_ci(r"\b(?:until|till) ((?:19|20)\d\d)\b"), None, 1),
)


def validity_years(statement: str) -> tuple[int | None, int | None]:
    """(valid_from, valid_to) stated in the sentence: "from 2010 to 2016", "since 2015".

    Read from the text rather than asked for as separate fields: the small model filled
    such fields at random, and a period parsed from the sentence cannot disagree with it.
    """
    for pattern, start, end in _PERIOD_PATTERNS:
        match = pattern.search(statement)
        if match:
            return (
                int(match.group(start)) if start else None,
                int(match.group(end)) if end else None,
            )
    return None, None


@dataclass(frozen=True)
class PersonaCandidate:
    """What the critics judge: the narrative and the whole ledger (seed facts first)."""

    narrative: str
    facts: tuple[Fact, ...]
    dropped: tuple[str, ...] = ()  # facts and narrative sentences `tidy_candidate` left out


@dataclass(frozen=True)
class PersonaContext:
    """What the critics judge against: the skeleton row and the ledger's bounds."""

    profile: dict[str, Any]
    facts_min: int
    facts_max: int
    reference_year: int
    profile_text: str = ""
    seed_sentences: tuple[str, ...] = field(default=())


def classify_statement(statement: str) -> str:
    """Category of a seed sentence: the one with most keyword hits (ties: file order)."""
    categories, fallback = load_categories()
    words = {_singular(w) for w in re.findall(r"[a-z$]+", statement.lower())}
    hits = {
        name: len(words & {_singular(k) for k in spec["keywords"]})
        for name, spec in categories.items()
    }
    best = max(hits, key=lambda name: hits[name])  # max keeps the first of equal counts
    return best if hits[best] else fallback


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def _same(words: set[str], other: set[str] | frozenset[str]) -> bool:
    """Two statements say the same thing: word-set Jaccard >= `DUPLICATE_JACCARD`."""
    return bool(words) and len(words & other) / len(words | other) >= DUPLICATE_JACCARD


def _sentences(text: str) -> list[str]:
    return [t for t in re.split(r"(?<=[.!?])\s+", text) if t.strip()]


def _is_concrete(statement: str) -> bool:
    tokens = statement.split()
    return any(ch.isdigit() for ch in statement) or any(
        t[:1].isupper() and t.strip(".,!?'\"") not in {"I", "I'm", "I've", "I'd", "My"}
        for t in tokens[1:]
    )


@cache
def _example_words() -> tuple[frozenset[str], ...]:
    """Word sets of the prompt's example sentences (checked against every fact)."""
    return tuple(frozenset(_words(e)) for e in example_statements())


def check_ledger(candidate: PersonaCandidate, context: PersonaContext) -> list[str]:
    """Problems with the ledger's shape: count, atomicity, duplicates, specificity, periods."""
    problems: list[str] = []
    generated = [f for f in candidate.facts if not f.seed]
    if not context.facts_min <= len(generated) <= context.facts_max:
        problems.append(
            f"write {context.facts_min}-{context.facts_max} facts, not {len(generated)}"
        )
    categories, _ = load_categories()
    birth = context.reference_year - int(context.profile["age"])
    for n, fact in enumerate(candidate.facts, 1):
        problems += [f"fact {n}: {p}" for p in _fact_problems(fact, categories, birth, context)]
    seen: list[tuple[int, set[str]]] = [(0, e) for e in _example_words()]
    for n, fact in enumerate(candidate.facts, 1):
        words = _words(fact.statement)
        for m, other in seen:
            if _same(words, other):
                problems.append(
                    f"facts {m} and {n} say the same thing; replace fact {n}"
                    if m
                    else f"fact {n} copies the example person; write about this person"
                )
                break
        seen.append((n, words))
    examples = _example_words()
    for sentence in _sentences(candidate.narrative):
        words = _words(sentence)
        if any(_same(words, e) for e in examples):
            problems.append(f"the narrative copies the example person ({sentence!r})")
            break
    concrete = sum(_is_concrete(f.statement) for f in generated)
    if generated and concrete < MIN_CONCRETE_SHARE * len(generated):
        problems.append("too few facts are concrete; name people, places, brands, years or numbers")
    if len(_FIRST_PERSON.findall(candidate.narrative)) < MIN_FIRST_PERSON:
        problems.append('write the narrative in the first person ("I", "my"), not about "she/he"')
    n_words = len(candidate.narrative.split())
    if not NARRATIVE_WORDS[0] <= n_words <= NARRATIVE_WORDS[1]:
        problems.append(f"the narrative has {n_words} words; write 4 to 6 sentences")
    return problems[:MAX_PROBLEMS]


def _fact_problems(
    fact: Fact, categories: dict[str, Any], birth: int, context: PersonaContext
) -> list[str]:
    out = []
    if fact.category not in categories:
        out.append(f"category {fact.category!r} is not one of {', '.join(categories)}")
    start, end = fact.valid_from, fact.valid_to
    if start is not None and end is not None and end < start:
        out.append(f"valid_to {end} is before valid_from {start}")
    if any(y is not None and y > context.reference_year for y in (start, end)):
        out.append(f"a validity year lies after {context.reference_year}")
    if any(y is not None and y < birth for y in (start, end)):
        out.append(f"a validity year lies before the birth year {birth}")
    if fact.seed:
        return out
    text = fact.statement.strip()
    n_words = len(text.split())
    if n_words < MIN_WORDS or n_words > MAX_WORDS:
        out.append(f"write one short sentence of {MIN_WORDS}-{MAX_WORDS} words")
    elif _has_two_sentences(text):
        out.append("holds more than one sentence; keep one statement per fact")
    if not _FIRST_PERSON.search(text):
        out.append("write it in the first person (I, my)")
    if any(p.search(text) for p in _GENERIC):
        out.append(f"{text!r} is generic; state something concrete and checkable")
    if _names_me(text, context.profile.get("name")):
        out.append("uses my own name for someone else; give other people their own names")
    return out


def _names_me(text: str, name: str | None) -> bool:
    """A fact that puts my first name on someone else ("My father is Sam Lee").

    Facts are first-person, so my first name has no place in them except in "my name is"
    (relatives may share my surname); the 0.5B model filled "a friend, by name" with the
    only name it knew, mine.
    """
    if not name:
        return False
    rest = _NAME_RE.sub("", text)
    return bool(re.search(rf"\b{re.escape(str(name).split()[0])}\b", rest))


def tidy_candidate(candidate: PersonaCandidate, context: PersonaContext) -> PersonaCandidate:
    """The draft without the generated facts the gates would reject one by one.

    A ledger is a list of atomic facts, so a bad fact can be left out instead of sending
    the whole draft back: a fact with a style problem, a repeat of an earlier fact or of
    the prompt's example, or one that contradicts the skeleton. Facts are dropped in order
    while more than `facts_min` remain, so the gates still see, and reject, a draft with
    too many bad facts. Narrative sentences that contradict the skeleton are cut the same
    way (`_tidy_narrative`); seed facts are never touched. The gates then judge what is
    left with unchanged rules; `dropped` keeps what was left out (narrative sentences
    prefixed "narrative: ").
    """
    categories, _ = load_categories()
    birth = context.reference_year - int(context.profile["age"])
    kept: list[Fact] = []
    dropped: list[str] = []
    room = sum(not f.seed for f in candidate.facts) - context.facts_min
    seen = list(_example_words())
    for fact in candidate.facts:
        words = _words(fact.statement)
        repeat = any(_same(words, other) for other in seen)
        current = fact.valid_to is None  # a past fact may name another state or job
        bad = (
            repeat
            or _fact_problems(fact, categories, birth, context)
            or (
                current
                and demographic_conflicts([fact.statement], context.profile, context.reference_year)
            )
        )
        if bad and not fact.seed and room > 0:
            dropped.append(fact.statement)
            room -= 1
            continue
        kept.append(fact)
        seen.append(words)
    narrative, cut = _tidy_narrative(candidate.narrative, context)
    if not dropped and not cut:
        return candidate
    return PersonaCandidate(narrative, tuple(kept), tuple(dropped) + cut)


def _tidy_narrative(narrative: str, context: PersonaContext) -> tuple[str, tuple[str, ...]]:
    """The narrative without sentences that contradict the skeleton (a job for a child).

    The first sentence (the given opener with the name) stays, and so do at least
    `MIN_NARRATIVE_SENTENCES`: a narrative cut shorter goes to the gates as written.
    """
    sentences = _sentences(narrative)
    room = len(sentences) - MIN_NARRATIVE_SENTENCES
    kept, cut = sentences[:1], []
    for sentence in sentences[1:]:
        if room > 0 and demographic_conflicts([sentence], context.profile, context.reference_year):
            cut.append(f"narrative: {sentence}")
            room -= 1
        else:
            kept.append(sentence)
    return " ".join(kept), tuple(cut)


def _has_two_sentences(text: str) -> bool:
    """A `;`, or `.!?` followed by a capital, except after an abbreviation ("St. David's")."""
    if ";" in text.rstrip(";"):
        return True
    for match in _SENTENCE_END.finditer(text):
        if match.group(2) != "." or match.group(1).lower() not in _ABBREVIATIONS:
            return True
    return False


def _current_texts(candidate: PersonaCandidate, *, include_seed: bool) -> list[str]:
    """Narrative sentences + facts still valid now (an outdated fact may name an old state).

    Sentence by sentence, so feedback quotes the offending sentence, not the narrative.
    """
    facts = [
        f.statement for f in candidate.facts if f.valid_to is None and (include_seed or not f.seed)
    ]
    sentences = _sentences(candidate.narrative)
    return [*sentences, *facts]


def check_demographics(candidate: PersonaCandidate, context: PersonaContext) -> list[str]:
    """Problems where the narrative or a generated fact disagrees with the skeleton."""
    problems = _name_problems(candidate, context.profile)
    texts = _current_texts(candidate, include_seed=False)
    problems += demographic_conflicts(texts, context.profile, context.reference_year)
    occupation = context.profile.get("occupation")
    if occupation and not _mentions_occupation(" ".join(texts), occupation):
        problems.append(f"never says that I work as {occupation}; mention it")
    return problems[:MAX_PROBLEMS]


def seed_conflicts(context: PersonaContext) -> list[str]:
    """Seed sentences that contradict their own skeleton (no LLM round can fix those)."""
    return demographic_conflicts(
        list(context.seed_sentences), context.profile, context.reference_year
    )


def _name_problems(candidate: PersonaCandidate, profile: dict[str, Any]) -> list[str]:
    first = str(profile["name"]).split()[0]
    out = []
    if not re.search(rf"\b{re.escape(first)}\b", candidate.narrative):
        out.append(f"the narrative must use my name, {profile['name']}")
    texts = [candidate.narrative, *(f.statement for f in candidate.facts)]
    for said in {m.group(1) for t in texts for m in _NAME_RE.finditer(t)}:
        if said.lower() != first.lower():
            out.append(f"calls me {said}, but my name is {profile['name']}")
    return out


def demographic_conflicts(texts: list[str], profile: dict[str, Any], year: int) -> list[str]:
    """Statements in `texts` that contradict age, state, work, marriage, sex or income."""
    age, out = int(profile["age"]), []
    for text in texts:
        for said in stated_ages(text, year):
            if abs(said - age) > AGE_TOLERANCE:
                out.append(f"{_quote(text)} gives age {said}, but I am {age}")
        state = profile.get("state")
        for other in stated_states(text):
            if state and other != state:
                out.append(f"{_quote(text)} says I live in {other}, but I live in {state}")
        if not profile.get("occupation") and _WORKS_NOW.search(text):
            status = profile.get("employment_status") or "a child"
            out.append(f"{_quote(text)} says I have a job, but I am {status}; remove it")
        if profile.get("occupation") and _NOT_WORKING.search(text):
            out.append(f"{_quote(text)} says I do not work, but I work as {profile['occupation']}")
        out += _marital_conflicts(text, profile.get("marital_status"), age)
        out += _sex_conflicts(text, profile.get("sex"))
        out += [
            f"{_quote(text)}: I am {age}, too young for that ({what})"
            for limit, pattern, what in _MINOR_RULES
            if age < limit and pattern.search(text)
        ]
        out += _income_conflicts(text, profile.get("household_income"), age)
        out += _before_birth(text, year - age)
    return out


def _before_birth(text: str, birth: int) -> list[str]:
    """A sentence in which I did something in a year before I was born."""
    out = []
    for sentence in _sentences(text):
        years = [int(y) for y in _YEAR_RE.findall(sentence)]
        if sentence.startswith(("I ", "I'")) and years and min(years) < birth - AGE_TOLERANCE:
            out.append(f"{_quote(sentence)} happens in {min(years)}, before I was born ({birth})")
    return out


def _quote(text: str) -> str:
    return repr(text if len(text) <= 70 else text[:67] + "...")


def stated_ages(text: str, year: int) -> list[int]:
    ages = [int(m.group(1)) for p in _AGE_PATTERNS for m in p.finditer(text)]
    return ages + [year - int(m.group(1)) for m in _BORN_RE.finditer(text)]


def stated_states(text: str) -> set[str]:
    found: set[str] = set()
    for match in _LIVE_RE.finditer(text):
        clause = _DC_RE.sub("District of Columbia", match.group(1))
        found |= set(_STATE_RE.findall(clause))
    return found


def _marital_conflicts(text: str, status: str | None, age: int) -> list[str]:
    married = bool(status) and str(status).startswith(("Now married", "Separated"))
    if not married and _HAS_SPOUSE.search(text):
        return [f"{_quote(text)} gives me a spouse, but I am {status or f'{age} years old'}"]
    if married and _NO_SPOUSE.search(text):
        return [f"{_quote(text)} says I am not married, but I am {status}"]
    return []


def _sex_conflicts(text: str, sex: str | None) -> list[str]:
    for other, words in _SEX_WORDS.items():
        if (
            sex
            and other != sex
            and re.search(
                rf"\bI(?:'m| am) (?:an?|the) (?:[\w-]+ ){{0,2}}(?:{words})\b", text, re.IGNORECASE
            )
        ):
            return [f"{_quote(text)} does not fit my sex ({sex})"]
    return []


def _income_conflicts(text: str, income: int | None, age: int) -> list[str]:
    out = []
    for match in _INCOME_RE.finditer(text):
        try:
            amount = float(match.group(1).replace(",", "").rstrip("."))
        except ValueError:
            continue
        amount *= 1000 if match.group(2) else 1
        per = (match.group(3) or "year").lower()
        yearly = amount * _PER_YEAR.get(per, 1)
        if income is None:
            if age < 16:
                out.append(f"{_quote(text)}: I am {age} and have no income")
        elif yearly > INCOME_FACTOR * max(income, 10_000) or (
            text.lower().lstrip().startswith("we") and yearly * INCOME_FACTOR < income
        ):
            out.append(f"{_quote(text)} does not fit my household income of ${income:,}")
    return out


def _mentions_occupation(text: str, occupation: str) -> bool:
    """True if a content word of the occupation title appears in `text` (5-letter prefix).

    Lenient on purpose: "Registered Nurses" is met by "nurse", "Laborers and Freight,
    Stock, and Material Movers, Hand" by "freight"; the LLM judges catch a wrong job.
    """
    keys = {w[:5] for w in re.findall(r"[a-z]+", occupation.lower()) if w not in _STOP}
    keys = {k for k in keys if len(k) >= 4}
    words = {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 4}
    return not keys or bool(keys & words)


def persona_experts(*, judges: bool = True) -> list[Any]:
    """The experts of the persona loop, gates first; `judges=False` keeps only the gates."""
    experts: list[Any] = [
        RuleExpert("ledger", check_ledger),
        RuleExpert("demographics", check_demographics),
    ]
    if judges:
        experts += [
            LlmJudge("coherence", coherence_messages, JUDGE_PASS_SCORE),
            LlmJudge("realism", realism_messages, JUDGE_PASS_SCORE),
        ]
    return experts
