"""Natural probe questions from first-person facts: "How much do I pay a month in rent?".

A probe's question is what a user might ask their assistant about themselves; its answer is
one exact span of the fact (`probes.answer_span`), so scoring stays exact-match friendly.

Decisions:
- Deterministic grammar, no model: the fact's clause is split into subject and verb, the
  phrase holding the answer span is removed, a wh-word is chosen from the span's kind and
  the preposition before it (a dollar amount -> "How much", a year after "since" -> "Since
  when", a place after "in/at" -> "Where", a name after "named" -> "What is my cat's
  name?"), and the clause is inverted with do-support ("I pay" -> "do I pay", "I moved" ->
  "did I move", "My son plays" -> "does my son play", "I am" -> "am I").
- A question is only kept when it is well formed by construction: the span's words are
  not in it, it has a verb, and it ends with "?". Otherwise `natural_question` returns
  None and the caller falls back to the category cloze (counted in the probe stats), so a
  fact with an unusual shape still gets a probe.
- Irregular past tenses are a small table; regular ones lose "-ed" by rule.
"""

from __future__ import annotations

import itertools
import re

WORD_RX = re.compile(r"\S+")
BE = {"am", "is", "are", "was", "were"}
HAVE = {"have", "has", "had"}
MODALS = {"can", "will", "would", "could", "should", "must", "might", "may"}
PREPS = {
    "in", "at", "on", "near", "from", "to", "for", "with", "about", "by", "of", "into", "since",
    "before", "after", "during", "until", "every", "like", "as", "around", "outside", "inside",
}  # fmt: skip
PLACE_PREPS = {"in", "at", "on", "near", "around", "outside", "inside", "into"}
TIME_PREPS = {"before", "after", "during", "until", "every"}
DETERMINERS = {"a", "an", "the", "my", "our", "his", "her", "their", "some", "two", "three"}
RELATIONS = {
    "daughter", "son", "wife", "husband", "partner", "friend", "sister", "brother", "mother",
    "father", "mom", "dad", "cousin", "aunt", "uncle", "niece", "nephew", "grandson",
    "granddaughter", "boss", "roommate", "neighbor", "neighbour", "fiance", "fiancee", "dog",
    "cat", "beagle", "puppy", "kitten", "parrot", "horse", "girlfriend", "boyfriend",
}  # fmt: skip
IRREGULAR = {
    "went": "go", "grew": "grow", "ran": "run", "met": "meet", "had": "have", "got": "get",
    "took": "take", "gave": "give", "made": "make", "bought": "buy", "began": "begin",
    "left": "leave", "won": "win", "lost": "lose", "sold": "sell", "spent": "spend",
    "found": "find", "became": "become", "saw": "see", "came": "come", "wrote": "write",
    "taught": "teach", "drove": "drive", "broke": "break", "flew": "fly", "paid": "pay",
    "built": "build", "fell": "fall", "kept": "keep", "told": "tell", "thought": "think",
    "swam": "swim", "sang": "sing", "rode": "ride", "ate": "eat", "drank": "drink",
    "knew": "know", "heard": "hear", "held": "hold", "led": "lead", "read": "read",
    "quit": "quit", "put": "put", "set": "set", "lent": "lend", "sent": "send", "wore": "wear",
    "chose": "choose", "stood": "stand", "threw": "throw", "caught": "catch", "felt": "feel",
    "did": "do", "said": "say", "sat": "sit", "slept": "sleep", "brought": "bring",
}  # fmt: skip
PARTICIPLE_IRREGULAR = {
    "been", "had", "done", "gone", "grown", "run", "met", "got", "gotten", "taken", "given",
    "made", "bought", "begun", "left", "won", "lost", "sold", "spent", "found", "become",
    "seen", "come", "written", "taught", "driven", "broken", "flown", "paid", "built",
    "fallen", "kept", "told", "known", "lived", "always", "never", "worked", "played",
}  # fmt: skip
TIME_WORDS = {
    "spring", "summer", "fall", "autumn", "winter", "weekend", "weekends", "morning", "mornings",
    "evening", "evenings", "night", "nights", "week", "weeks", "month", "months", "year", "years",
    "day", "days", "afternoon", "afternoons", "monday", "tuesday", "wednesday", "thursday",
    "friday", "saturday", "sunday", "mondays", "tuesdays", "wednesdays", "thursdays", "fridays",
    "saturdays", "sundays", "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december", "ago",
}  # fmt: skip
UNITS = r"(?:years?|months?|weeks?|days?|hours?|minutes?|miles?|pounds?|lbs|kg|percent|%)"


def _span_kind(span: str) -> str:
    if span.startswith("$") or span.endswith("dollars"):
        return "money"
    if re.fullmatch(r"(?:19|20)\d\d", span):
        return "year"
    if re.fullmatch(rf"\d[\d,.]*\s?{UNITS}", span):
        return "quantity"
    if re.fullmatch(r"\d[\d,.]*", span):
        return "count"
    if span.lower() in TIME_WORDS:
        return "time"
    return "name" if span[:1].isupper() else "thing"


def _base(verb: str) -> tuple[str, str]:
    """(auxiliary, base form) for do-support of a lexical verb."""
    low = verb.lower()
    if low in IRREGULAR:
        return "did", IRREGULAR[low]
    if low.endswith("ied") and len(low) > 4:
        return "did", low[:-3] + "y"
    if low.endswith("ed") and len(low) > 3:
        stem = low[:-2]
        if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "ls":
            stem = stem[:-1]  # stopped -> stop
        elif stem.endswith(("at", "iv", "ov", "us", "ar", "ak", "ir", "os", "ag", "ud", "it")):
            stem += "e"  # moved -> move, lived -> live, used -> use, shared -> share
        return "did", stem
    return "do", low


def _third_person_base(verb: str) -> str:
    low = verb.lower()
    if low.endswith("ies") and len(low) > 4:
        return low[:-3] + "y"
    if low.endswith(("ches", "shes", "sses", "xes", "oes")):
        return low[:-2]
    return low[:-1] if low.endswith("s") and not low.endswith("ss") else low


def _split_subject(tokens: list[str]) -> tuple[list[str], int] | None:
    """(subject tokens, index of the finite verb) of a first-person clause."""
    low = [t.lower() for t in tokens]
    if low[0] == "i":
        return tokens[:1], 1
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


def _invert(subject: list[str], verb: str, rest: list[str], wh: str) -> str:
    subj = " ".join(subject)
    subj = subj[0].lower() + subj[1:] if not subj.startswith("I ") and subj != "I" else subj
    low = verb.lower()
    plural = subj == "I" or subj.endswith((" I", " and I"))
    if low in BE | MODALS or (low in HAVE and rest and _participle(rest[0])):
        head = f"{wh} {low} {subj}"
    elif low in HAVE:
        aux = "did" if low == "had" else ("do" if plural else "does")
        head = f"{wh} {aux} {subj} have"
    else:
        aux, base = _base(verb)
        if aux == "do" and not plural:
            aux, base = "does", _third_person_base(verb)
        head = f"{wh} {aux} {subj} {base}"
    tail = " ".join(rest).strip(" ,")
    return f"{head} {tail}".strip() + "?"


def _participle(word: str) -> bool:
    w = word.lower()
    return w in PARTICIPLE_IRREGULAR or w.endswith(("ed", "en"))


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
        return f"What is my {noun}'s name?"
    if clause.startswith("My "):
        clause = "my " + clause[3:]
    return f"What is the name of the {noun} {clause}?"


def natural_question(statement: str, span: str) -> str | None:
    """A question whose answer is `span`, phrased as the fact's owner would ask it."""
    text = statement.strip().rstrip(".!")
    text = re.sub(r"^I'm\b", "I am", re.sub(r"^I've\b", "I have", text))
    at = text.find(span)
    if at <= 0:
        return None
    before, after = WORD_RX.findall(text[:at]), WORD_RX.findall(text[at + len(span) :])
    if _span_kind(span) == "name" and len(before) == 2 and before[1].lower() in RELATIONS:
        return _checked(f"What is my {before[1].lower()}'s name?", span)  # "My son Kai ..."
    parsed = _split_subject(before + ["\0"] + after)
    if parsed is None or parsed[1] >= len(before):
        return None
    subject, vi = parsed
    verb, mid = before[vi], before[vi + 1 :]
    kind, low_mid = _span_kind(span), [w.lower() for w in mid]
    if low_mid and low_mid[-1] in {"named", "called"} or low_mid[-2:-1] == ["called"]:
        question = _named_question(before, subject)
        return _checked(question, span)
    wh, strip_after = _wh(kind, mid, after)
    if kind == "count" and mid and mid[-1].isalpha() and mid[-1].lower() not in PREPS | DETERMINERS:
        wh, mid = f"What {mid[-1].lower()}", mid[:-1]  # "on route 7" -> "What route"
    cut = _phrase_start(mid, kind)
    prep = mid[cut - 1].lower() if cut > 0 and mid[cut - 1].lower() in PREPS else None
    keep_prep = prep is not None and wh == "What" and prep not in PLACE_PREPS | TIME_PREPS
    rest = mid[: cut - 1] if prep and not keep_prep else mid[:cut]
    tail = after[strip_after:]
    rest_words = " ".join(tail).lstrip(", ").split()
    if tail and tail[0].startswith(",") and rest_words and rest_words[0][:1].isupper():
        tail = rest_words  # "in Tulsa, Oklahoma": the capitalised appositive goes too
        while tail and tail[0].lower() not in PREPS:
            tail = tail[1:]
    if kind == "time":
        wh, tail = _time_wh(mid[cut:], tail)
        while rest and rest[-1].lower() in PREPS | {"once", "twice", "a", "per", "times"}:
            rest = rest[:-1]
    elif prep is None and wh == "What":  # a direct object: drop its trailing nouns too
        while tail and tail[0].lower() not in PREPS and tail[0][-1:] not in ",;":
            tail = tail[1:]
    if prep is not None and not keep_prep and kind != "time":
        wh = _wh_for_prep(wh, prep, kind)
        while rest and rest[-1].lower() in PLACE_PREPS | TIME_PREPS:
            rest = rest[:-1]  # "before every shift": both prepositions go
    if verb.lower() in BE and subject[0] != "I" and rest and wh in {"What", "Where"}:
        return None  # "My favorite dish is the pierogi at ..." does not invert cleanly
    return _checked(_invert(subject, verb, rest + tail, wh), span)


def _time_wh(phrase: list[str], tail: list[str]) -> tuple[str, list[str]]:
    """ "twice a week" asks how often; any other time phrase asks when ("ago" goes too)."""
    if tail[:1] == ["ago"]:
        tail = tail[1:]
    low = [w.lower() for w in phrase]
    return ("How often" if {"once", "twice", "times"} & set(low) else "When"), tail


TIME_MODIFIERS = {"last", "next", "this", "every", "each", "a", "per", "once", "twice", "times",
                  "the", "early", "late", "two", "three", "four", "five", "several", "few"}  # fmt: skip


def _phrase_start(mid: list[str], kind: str) -> int:
    """Where the phrase holding the span starts in `mid` (the words between verb and span).

    A time word takes only its modifiers ("last spring", "every Sunday morning"); another
    span takes its modifiers back to a determiner, a preposition or a verb ("in my backyard
    garden", "to become an electrician" keeps "become").
    """
    cut = len(mid)
    if kind == "time":
        while cut > 0 and (
            mid[cut - 1].lower() in TIME_MODIFIERS | TIME_WORDS or mid[cut - 1].isdigit()
        ):
            cut -= 1
        return cut
    while cut > 0:
        w = mid[cut - 1].lower()
        if w in PREPS or _is_verbish(w):
            break
        cut -= 1
        if w in DETERMINERS:
            break
    return cut


def _is_verbish(word: str) -> bool:
    w = word.lower()
    return w in BE | HAVE | MODALS or w in IRREGULAR


def _wh(kind: str, mid: list[str], after: list[str]) -> tuple[str, int]:
    """(wh-phrase, how many words after the span it absorbs)."""
    if kind == "money":
        return "How much", 0
    if kind == "quantity":
        if after[:1] == ["old"]:
            return "How old", 1
        return "How long" if mid[-1:] == ["for"] else "How many", 0
    if kind == "count" and after and after[0].isalpha() and after[0].lower() not in PREPS:
        return f"How many {after[0].rstrip(',')}", 1
    if kind == "count":
        return "How many", 0
    if kind == "year":
        return "In what year", 0
    return "What", 0


def _wh_for_prep(wh: str, prep: str, kind: str) -> str:
    if kind == "year":
        return {"since": "Since when", "from": "From what year", "until": "Until when"}.get(
            prep, "In what year"
        )
    if wh in {"What"} and prep in PLACE_PREPS:
        return "Where"
    if wh == "What" and prep in TIME_PREPS:
        return "When"
    return wh


def _checked(question: str | None, span: str) -> str | None:
    if not question or not question.endswith("?"):
        return None
    q_words = set(re.findall(r"[a-z0-9]+", question.lower()))
    span_words = set(re.findall(r"[a-z0-9]+", span.lower())) - {"years", "year", "old"}
    if span_words and span_words <= q_words:
        return None
    toks = question.lower().rstrip("?").split()
    if any(a == b for a, b in itertools.pairwise(toks)) or " who " in question:
        return None  # a doubled word or a relative clause left behind: not well formed
    return question[0].upper() + question[1:]
