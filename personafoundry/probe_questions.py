"""Natural probe questions from first-person facts: "How much do I pay a month in rent?".

A probe's question is what a user might ask their assistant about themselves; its answer is
one exact span of the fact (`probes.answer_span`), so scoring stays exact-match friendly.

Decisions:
- Deterministic grammar, no model: the fact's clause is split into subject and verb, the
  phrase holding the answer span is removed, a wh-word is chosen from the span's kind and
  the preposition before it (a dollar amount -> "How much", a year after "since" -> "Since
  when", a place after "in/at" -> "Where", a name after "named" or "my son" -> "What is my
  son's name?"), and the clause is inverted with do-support ("I pay" -> "do I pay", "I
  moved" -> "did I move", "My son plays" -> "does my son play", "I am" -> "am I").
- A number says what it counts: "How many" takes the span's unit or the nouns after it
  ("5 miles" -> "How many miles", "3 cups of coffee", "4 times a week"); "for 5 years" asks
  "How long", "5 years ago" "How long ago", "5 feet tall" "How tall", "I'm 34" "How old",
  "at 6 am" "What time", "at age 30" "At what age", "in 4 hours" "In how many hours". A
  bare number that counts nothing ("I am a mother of 3", "at 16") gets no question.
- A question is only kept when it is well formed (`_checked`): 4-20 words ending in "?";
  a wh-phrase of at most five words ("How many" then a plural noun) followed by an
  auxiliary and the subject ("I", "my ..."); none of the span's words; no doubled word,
  second "I", relative "who", sentence break, bracket or cloze blank; no dangling end (an
  auxiliary, determiner or conjunction, "most of"). Otherwise `natural_question` returns
  None and the caller falls back to the category cloze (counted in the probe stats), so
  a fact with an unusual shape still gets a probe. Shapes the grammar cannot invert give
  None too: a negated fact, a span inside a word ("City1") or after a comma (a list), a
  predicate coordinated with "and" ("I am single and happy about it"), a year used as a
  modifier ("a 2015 Honda Civic"), names of a plural ("three cats named ...").
- Irregular past tenses are a small table; regular ones lose "-ed" by rule ("served" ->
  "serve", "visited" -> "visit"); "read", "put", "set"... are past only next to a past
  marker ("ago", "last", "in 2019"). An adverb after "I" stays with it ("did I once live").
"""

from __future__ import annotations

import itertools
import re

from personafoundry.probe_lexicon import (
    ADVERBS,
    APPROX,
    AUX,
    BE,
    CLOCK,
    CONJ,
    DETERMINERS,
    HAVE,
    IRREGULAR,
    LABELS,
    MEASURES,
    MODALS,
    NEGATIONS,
    PAST_RX,
    PEOPLE,
    PLACE_PREPS,
    PLACE_WORDS,
    PREPS,
    RELATIONS,
    STOPS,
    TIME_MODIFIERS,
    TIME_PREPS,
    TIME_WORDS,
    UNITS,
    WORD_RX,
    base_verb,
    is_participle,
    is_plural,
    takes_infinitive,
    third_person_base,
)


def _span_kind(span: str) -> str:
    if span.startswith("$") or span.endswith("dollars"):
        return "money"
    if re.fullmatch(r"(?:19|20)\d\d", span):
        return "year"
    if re.fullmatch(rf"\d[\d,.]*\s?{UNITS}", span):
        return "quantity"
    if re.fullmatch(r"\d[\d,.]*", span):
        return "count"
    if span.lower() in TIME_WORDS | {"once", "twice"}:
        return "time"
    return "name" if span[:1].isupper() else "thing"


def _split_subject(tokens: list[str]) -> tuple[list[str], int] | None:
    """(subject tokens, index of the finite verb) of a first-person clause."""
    low = [t.lower() for t in tokens]
    if low[0] == "i":
        i = 1
        while i + 1 < len(low) and low[i] in ADVERBS:
            i += 1  # "I once lived": the adverb stays with the subject
        return tokens[:i], i
    if low[0] != "my":
        return None
    for i in range(1, min(len(tokens), 7)):
        w = low[i]
        if w in BE | HAVE | MODALS or w in IRREGULAR or (w.endswith("ed") and i > 1):
            return tokens[:i], i
        if i > 1 and w.endswith("s") and not tokens[i][:1].isupper() and low[i - 1] != "and":
            return tokens[:i], i
        if w == "i" and low[i - 1] == "and" and i + 1 < len(tokens):
            return tokens[: i + 1], i + 1
    return None


def _invert(subject: list[str], verb: str, rest: list[str], wh: str, past: bool) -> str:
    subj = " ".join(subject)
    subj = subj[0].lower() + subj[1:] if not subj.startswith("I ") and subj != "I" else subj
    low = verb.lower()
    plural = [w for w in subject if w.lower() not in ADVERBS][-1] == "I"
    if low in BE | MODALS or (low in HAVE and rest and is_participle(rest[0])):
        head = f"{wh} {low} {subj}"
    elif low in HAVE:
        aux = "did" if low == "had" else ("do" if plural else "does")
        head = f"{wh} {aux} {subj} have"
    else:
        aux, base = base_verb(verb, past)
        if aux == "do" and not plural:
            aux, base = "does", third_person_base(verb)
        head = f"{wh} {aux} {subj} {base}"
    tail = " ".join(rest).strip(" ,")
    return f"{head} {tail}".strip() + "?"


def _name_of(noun: str | None) -> str | None:
    """ "What is my gray cat's name?"; None for a plural ("my cats")."""
    if not noun or is_plural(noun.split()[-1]):
        return None
    return f"What is my {noun}'s name?"


def _relation(words: list[str]) -> str | None:
    """ "best friend" when `words` end "my best friend" (a name follows them)."""
    low = [w.lower() for w in words]
    at = max((i for i, w in enumerate(low) if w in {"my", "our"}), default=None)
    if at is None or not 0 < len(low) - at - 1 <= 3 or low[-1] not in RELATIONS:
        return None
    return " ".join(low[at + 1 :]) if all(w.isalpha() for w in low[at + 1 :]) else None


def _named_question(before: list[str], subject: list[str]) -> str | None:
    """ "I have a gray cat named Pepper" -> "What is my gray cat's name?"."""
    low = [w.lower() for w in before]
    while low and low[-1] in {"named", "called", "the"}:
        low, before = low[:-1], before[:-1]
    start = max((i for i, w in enumerate(low) if w in DETERMINERS), default=None)
    if start is None or start + 1 >= len(before):
        return None
    noun = " ".join(before[start + 1 :])
    clause = " ".join(before[:start])
    if clause.lower() in {"i have", "i own", "i had", ""}:
        return _name_of(noun)
    if clause.startswith("My "):
        clause = "my " + clause[3:]
    return f"What is the name of the {noun} {clause}?"


def natural_question(statement: str, span: str) -> str | None:
    """A question whose answer is `span`, phrased as the fact's owner would ask it."""
    text = statement.strip().rstrip(".!")
    text = re.sub(r"^I'm\b", "I am", re.sub(r"^I've\b", "I have", text))
    at, words = text.find(span), re.findall(r"[a-z']+", text.lower())
    if at <= 0 or text[at - 1].isalnum() or any(w in NEGATIONS or "n't" in w for w in words):
        return None  # a span inside a word ("City1"), a negated fact
    before, after = WORD_RX.findall(text[:at]), WORD_RX.findall(text[at + len(span) :])
    kind = _span_kind(span)
    if kind == "name" and _relation(before):
        return _checked(_name_of(_relation(before)), span)  # "My son Kai", "I love my dog Max"
    parsed = _split_subject(before + ["\0"] + after)
    if parsed is None or parsed[1] >= len(before):
        return None
    subject, vi = parsed
    verb, mid = before[vi], before[vi + 1 :]
    low_mid, be, mine = [w.lower() for w in mid], verb.lower() in BE, subject[0] != "I"
    subj_words = {w.lower() for w in subject}
    pairs = itertools.pairwise(mid)
    if any(a.lower() in CONJ and (b == "I" or b.islower()) for a, b in pairs) or (
        mid and (mid[-1][-1] in ",;:." or low_mid[-1] in CONJ)
    ):
        return None  # an appositive or list, a second sentence, a coordinated predicate
    if low_mid[-1:] in (["named"], ["called"]) or low_mid[-2:-1] == ["called"]:
        if be and len(mid) == 1 and mine:  # "My parrot is called Kiwi"
            return _checked(_name_of(" ".join(subject[1:]).lower()), span)
        return _checked(_named_question(before, subject), span)
    if kind == "name" and be and not mid and _relation(subject):  # "My best friend is Sarah"
        return _checked(_name_of(_relation(subject)), span)
    wh, absorbed = _wh(kind, span, mid, after)
    turned = [verb, *mid][-1].lower() in {"turn", "turns", "turned", "turning"}
    if kind == "count" and low_mid[-1:] and low_mid[-1] in LABELS:
        if after[:1] and after[0].isalpha() and after[0].lower() not in PREPS | CONJ:
            return None  # "type 2 diabetes": the number is inside a noun phrase
        wh, mid = f"What {low_mid[-1]}", mid[:-1]  # "on route 7" -> "On what route"
    elif wh == "How many" and (turned or (be and not mid and not after and subj_words & PEOPLE)):
        wh = "How old"  # "I will turn 40", "I'm 34", "My son is 12"
    if wh is None:
        return None
    cut = _phrase_start(mid, kind, verb)
    prep = mid[cut - 1].lower() if cut > 0 and mid[cut - 1].lower() in PREPS else None
    head = [w.lower() for w in mid[: max(cut - 1, 0)]]
    adjective = head[-1:] in (["degree"], ["major"]) or (
        be and head and not set(head) & (DETERMINERS | PREPS | PLACE_WORDS)
    )  # "I am interested in", "I am very good at", "a degree in": not a place
    keep_prep = prep is not None and (
        (wh == "What" and (prep not in PLACE_PREPS | TIME_PREPS or adjective))
        or (wh.startswith("How many ") and kind == "count" and prep not in TIME_PREPS)
        or (kind == "money" and prep == "for")
    )  # "What am I allergic to?", "How many cats does she live with?", "... buy it for?"
    rest = mid[: cut - 1] if prep and not keep_prep else mid[:cut]
    wh = "Where" if keep_prep and prep == "from" and kind == "name" else wh  # "I come from Ohio"
    tail = _tail(after[absorbed:])
    if kind == "time":
        if prep is None and mid and set(low_mid[cut:]) <= {"my", "the", "a"} and span not in STOPS:
            return None  # "I like mornings": an object, not a time
        wh, tail = _time_wh(mid[cut:] + [span], tail)
        wh = "What" if be and not mid else wh  # "My favorite season is fall"
        while rest and rest[-1].lower() in PREPS | {"once", "twice", "a", "per", "times", "most"}:
            rest = rest[:-1]
    elif (
        (prep is None and wh == "What")
        or (prep and kind in {"name", "thing"})
        or (absorbed and wh.split()[-1] in MEASURES)
    ):  # the noun phrase goes whole: "my Norwood porch", "a 38 year old woman"
        tail = list(itertools.dropwhile(_in_noun_phrase, tail))
    if prep is not None and not keep_prep and kind != "time":
        wh = _wh_for_prep(wh, prep, kind)
        while rest and rest[-1].lower() in PLACE_PREPS | TIME_PREPS:
            rest = rest[:-1]  # "before every shift": both prepositions go
    topic = subj_words & {"favorite", "favourite", "hobby", "goal", "dream"}
    person = wh == "What" and kind == "thing" and subject[-1].lower() in RELATIONS
    if be and mine and (person or (rest and (wh in {"What", "Where"} or topic))):
        return None  # "My favorite dish is the pierogi at ...", "My cat is gray": no inversion
    if keep_prep and prep == "to" and cut == len(mid) and kind == "thing":
        lead = [w for w in [verb, *mid[:-1]] if w.lower() not in {"me", "him", "her", "us", "them"}]
        rest = rest + ["do"] if takes_infinitive(lead[-1]) else rest  # "What do I love to do?"
    return _checked(_invert(subject, verb, rest + tail, wh, bool(PAST_RX.search(text))), span)


def _in_noun_phrase(word: str) -> bool:
    return (word == "of" or word.lower() not in PREPS | STOPS) and word[-1] != ","


def _tail(tail: list[str]) -> list[str]:
    """The words after the span that stay: an appositive and a following clause go."""
    words = " ".join(tail).lstrip(", ").split()
    if tail and tail[0].startswith(",") and words and words[0][:1].isupper():
        tail = words  # "in Tulsa, Oklahoma": the capitalised appositive goes too
        while tail and tail[0].lower() not in PREPS:
            tail = tail[1:]
    return list(itertools.takewhile(lambda w: w.lower().strip(",") not in CONJ, tail))


def _time_wh(phrase: list[str], tail: list[str]) -> tuple[str, list[str]]:
    """ "twice a week" asks how often, another time phrase when; its rest goes from the tail."""
    often = bool({"once", "twice", "times"} & {w.lower() for w in phrase})
    while tail and tail[0].lower() in TIME_WORDS:
        tail = tail[1:]  # "every Saturday morning"
    if often and [w.lower() for w in tail[:1]] in (["a"], ["per"], ["every"]) and tail[1:2]:
        tail = tail[2:] if tail[1].lower() in TIME_WORDS else tail  # "twice a day"
    return ("How often" if often else "When"), tail


def _phrase_start(mid: list[str], kind: str, verb: str) -> int:
    """Where the phrase holding the span starts in `mid` (the words between verb and span).

    A time word takes only its modifiers ("last spring", "every Sunday morning"); a number
    only approximations and a month ("over 5", "in April 2022"); another span takes its
    modifiers back to a determiner, a preposition, a comma or a verb ("in my backyard
    garden", "to become an electrician" keeps "become", "I can speak", "I am learning",
    "I love to cook", "good at cooking" keep theirs).
    """
    cut, low = len(mid), [w.lower() for w in mid]
    if kind == "time":
        while cut > 0 and (low[cut - 1] in TIME_MODIFIERS | TIME_WORDS or low[cut - 1].isdigit()):
            cut -= 1
        return cut
    if kind not in {"name", "thing"}:
        while cut > 0 and low[cut - 1] in APPROX | TIME_WORDS | DETERMINERS:
            cut -= 1
        return cut
    floor = int(bool(low) and (verb.lower() in MODALS or low[0].endswith("ing")))
    for i, (a, b) in enumerate(itertools.pairwise([verb.lower(), *low])):
        if i and a == "to" and takes_infinitive(([verb.lower(), *low])[i - 1]):
            floor = i + 1  # "love to cook"
        elif i and a in PREPS and b.endswith("ing"):
            floor = i + 1  # "good at cooking"
    while cut > floor:
        w = low[cut - 1]
        if w in PREPS or _is_verbish(w) or w[-1] in ",;.":
            break
        cut -= 1
        if w in DETERMINERS:
            break
    return cut


def _is_verbish(word: str) -> bool:
    w = word.lower()
    return w in BE | HAVE | MODALS or w in IRREGULAR


def _wh(kind: str, span: str, mid: list[str], after: list[str]) -> tuple[str | None, int]:
    """(wh-phrase, how many words after the span it absorbs); None when no question fits."""
    low = [w.lower().rstrip(",") for w in after] + ["", ""]
    if kind == "money":
        return "How much", 0
    if kind == "year":  # "a 2015 Honda Civic" is no year of an event
        fits = not after or low[0] in PREPS | CONJ or not after[0][0].isalnum()
        return ("In what year" if fits else None), 0
    if kind not in {"quantity", "count"}:
        return "What", 0
    for i in (0, 1):
        if low[i] in MEASURES and (kind == "quantity" or low[i + 1] in PREPS | CONJ | {""}):
            return f"How {low[i]}", i + 1  # "9 years old", "5 feet tall"
    if low[0] in {"ago", *CLOCK}:
        return ("How long ago" if low[0] == "ago" else "What time"), 1
    noun: list[str] = []
    if kind == "quantity":
        unit = re.sub(r"^[\d,.]+\s?", "", span).lower()
        if unit in {"%", "percent"}:
            return None, 0
        noun = [unit if unit.endswith("s") or unit == "kg" else unit + "s"]
    stop = PREPS | CONJ | AUX | DETERMINERS | STOPS | {"each"}
    for w in after[:2] if kind == "count" else []:
        if w.endswith(","):
            return None, 0  # "2 children, Ana and Luis": a list follows
        if not re.fullmatch(r"[a-z][a-z-]*", w) or w in stop or w.endswith(("ed", "ing")):
            break
        noun.append(w)  # "3 cats", "20 tomato plants"
    n = len(noun) if kind == "count" else 0
    pair = low[n] in {"a", "an", "per"} and low[n + 1] in TIME_WORDS
    if pair or (low[n] == "of" and re.fullmatch(r"[a-z]+", low[n + 1])):
        noun, n = [*noun, low[n], low[n + 1]], n + 2  # "4 times a week", "3 cups of coffee"
    lead = [w for w in mid if w.lower() not in APPROX][-1:]
    if kind == "quantity" and n == 0 and lead == ["for"]:
        return "How long", 0
    return " ".join(["How many", *noun]), n


def _wh_for_prep(wh: str, prep: str, kind: str) -> str:
    if kind == "year":
        return {"since": "Since when", "from": "From what year", "until": "Until when"}.get(
            prep, "In what year"
        )
    if kind in {"count", "quantity"} and prep == "every":
        return "How often"  # "every 6 months"
    if wh == "How old" and prep == "at":
        return "At what age"
    if wh.startswith("What "):
        return f"{prep.capitalize()} what {wh[5:]}"  # "At what age", "At what time"
    if wh.startswith("How many ") and kind == "quantity" and prep == "in":
        return "In how many " + wh[9:]  # "in 4 hours" -> "In how many hours"
    if wh == "What" and prep in PLACE_PREPS | TIME_PREPS:
        return "Since when" if prep == "since" else "Where" if prep in PLACE_PREPS else "When"
    return wh


def _checked(question: str | None, span: str) -> str | None:
    """The question, capitalised, when it is well formed (see the module docstring)."""
    if not question or not question.endswith("?"):
        return None
    if re.search(r"[;:()\[\]\"_]|(?<![A-Z][a-z])\.\s", question):
        return None  # a second sentence or a bracket came along ("St. David's" may)
    q_words = set(re.findall(r"[a-z0-9]+", question.lower()))
    span_words = set(re.findall(r"[a-z0-9]+", span.lower())) - {"years", "year", "old"}
    if span_words and span_words <= q_words:
        return None
    toks = question.lower().rstrip("?").split()
    if (
        not 4 <= len(toks) <= 20
        or any(a == b for a, b in itertools.pairwise(toks))
        or " who " in question
        or toks.count("i") > 1
        or toks[-1] in BE | MODALS | DETERMINERS | CONJ
        or (toks[-2] in {"most", "some", "all", "any", "one", "part"} and toks[-1] in PREPS)
        or any(t[0] == "-" or t[-1] == "-" for t in toks)
    ):
        return None  # too short or long, a doubled word, a second clause, a dangling end
    if not question.startswith("What is the name of the "):
        aux = next((i for i, t in enumerate(toks) if t in AUX), len(toks))
        if aux > 5 or toks[aux + 1 : aux + 2] not in (["i"], ["my"]):
            return None  # the wh-phrase must be followed by an auxiliary and the subject
        if "many" in toks[:aux] and not any(map(is_plural, toks[toks.index("many") + 1 : aux])):
            return None  # "How many do I walk?": nothing counted
    return question[0].upper() + question[1:]
