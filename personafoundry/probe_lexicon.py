"""The English the probe question grammar knows: word classes and verb morphology.

`probe_questions` turns a first-person fact into a question; this module holds what it
needs to know about words (auxiliaries, prepositions, time words, units, relations) and
the small morphology it applies (base form and do-support of a verb, plurals,
participles). Kept as data apart from the grammar, as `conversation_lexicon` is for the
conversation critics.
"""

from __future__ import annotations

import re

WORD_RX = re.compile(r"\S+")
BE = {"am", "is", "are", "was", "were"}
HAVE = {"have", "has", "had"}
MODALS = {"can", "will", "would", "could", "should", "must", "might", "may"}
AUX = BE | HAVE | MODALS | {"do", "does", "did"}
PREPS = {
    "in", "at", "on", "near", "from", "to", "for", "with", "about", "by", "of", "into", "since",
    "before", "after", "during", "until", "every", "like", "as", "around", "outside", "inside",
    "between", "next",
}  # fmt: skip
PLACE_PREPS = {"in", "at", "on", "near", "around", "outside", "inside", "into", "next"}
TIME_PREPS = {"before", "after", "during", "until", "every", "since"}
DETERMINERS = {"a", "an", "the", "my", "our", "his", "her", "their", "some", "two", "three"}
CONJ = {"and", "but", "so", "or", "who", "which", "that", "because", "while", "when", "where"}
APPROX = {"about", "around", "over", "nearly", "almost", "roughly", "only", "just", "exactly"}
ADVERBS = {"once", "usually", "always", "often", "sometimes", "also", "still", "just", "really",
           "recently", "currently", "now", "rarely", "finally", "already", "normally"}  # fmt: skip
NEGATIONS = {"not", "never", "no", "cannot", "nor"}
RELATIONS = {
    "daughter", "son", "wife", "husband", "partner", "friend", "sister", "brother", "mother",
    "father", "mom", "dad", "cousin", "aunt", "uncle", "niece", "nephew", "grandson",
    "granddaughter", "boss", "roommate", "neighbor", "neighbour", "fiance", "fiancee", "dog",
    "cat", "beagle", "puppy", "kitten", "parrot", "horse", "girlfriend", "boyfriend",
    "grandmother", "grandma", "grandfather", "grandpa", "stepson", "stepdaughter",
}  # fmt: skip
LABELS = {"route", "age", "grade", "room", "number", "level", "size", "page", "highway",
          "channel", "exit", "floor", "chapter", "apartment", "type", "stage"}  # fmt: skip
INF_VERBS = {"love", "like", "want", "hope", "plan", "need", "try", "learn", "use", "teach",
             "start", "begin", "decide", "prefer", "hate"}  # fmt: skip
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
SAME_PAST = {"read", "put", "set", "cut", "hit", "let", "cost", "hurt", "shut"}
PAST_RX = re.compile(r"\b(?:ago|last|yesterday|when I was|in (?:19|20)\d\d)\b")
E_STEM_RX = re.compile(  # "moved" -> "move": a stem that lost its "e" to "-ed"
    r"(?:^[^aeiou]*[aeiou][^aeiouwxy]|at|iv|ov|us|ar|ak|ir|os|ag|ud|rv|lv|nc|uc|dg|ang|is|as|ic"
    r"|iz|u|[cnv]it|[^aeiou]id)$"
)
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
    "august", "september", "october", "november", "december", "ago", "time",
}  # fmt: skip
UNITS = r"(?:years?|months?|weeks?|days?|hours?|minutes?|miles?|pounds?|lbs|kg|percent|%)"
PLACE_WORDS = {"born", "raised", "based", "located", "living", "staying", "stationed"}
STOPS = {"next", "last", "this", "once", "twice"}  # end a noun phrase
MEASURES = {"old", "tall", "long", "high", "deep", "wide"}
CLOCK = {"am", "pm", "a.m.", "p.m.", "o'clock"}
PEOPLE = RELATIONS | {"i"}
PLURALS = {"people", "children", "grandchildren", "feet", "men", "women", "teeth", "kg", "cm"}
TIME_MODIFIERS = {"last", "next", "this", "every", "each", "a", "per", "once", "twice", "times",
                  "the", "early", "late", "two", "three", "four", "five", "several", "few",
                  "most", "free", "spare", "my"}  # fmt: skip


def base_verb(verb: str, past: bool = False) -> tuple[str, str]:
    """(auxiliary, base form) for do-support of a lexical verb."""
    low = verb.lower()
    if low in SAME_PAST:
        return ("did" if past else "do"), low
    if low in IRREGULAR:
        return "did", IRREGULAR[low]
    if low.endswith("eed"):
        return "do", low  # feed, need
    if low.endswith("ied") and len(low) > 4:
        return "did", low[:-3] + "y"
    if low.endswith("ed") and len(low) > 3:
        stem = low[:-2]
        if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsd":
            stem = stem[:-1]  # stopped -> stop
        elif E_STEM_RX.search(stem):
            stem += "e"  # moved -> move, smoked -> smoke, served -> serve
        return "did", stem
    return "do", low


def third_person_base(verb: str) -> str:
    low = verb.lower()
    if low.endswith("ies") and len(low) > 4:
        return low[:-3] + "y"
    if low.endswith(("ches", "shes", "sses", "xes", "oes")):
        return low[:-2]
    return low[:-1] if low.endswith("s") and not low.endswith("ss") else low


def takes_infinitive(word: str) -> bool:
    """ "love" in "I love to cook", "used" in "I used to smoke"."""
    w = word.lower()
    stem = w.removesuffix("ing")
    return bool({w, base_verb(w)[1], third_person_base(w), stem, stem + "e"} & INF_VERBS)


def is_plural(word: str) -> bool:
    regular = len(word) > 2 and word.endswith("s") and not word.endswith(("ss", "us", "is"))
    return word in PLURALS or (regular and word not in AUX)


def is_participle(word: str) -> bool:
    w = word.lower()
    return w in PARTICIPLE_IRREGULAR or w.endswith(("ed", "en"))
