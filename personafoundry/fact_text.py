"""Matching facts and answers against document text: tokens, fact matches, answer spans.

Shared by the document critics (is a planned fact or distractor detail in the draft?) and
the probe builder (which documents state a probe's answer?), so both stages agree on
what "the document says it" means.

Decisions:
- Tokens are lowercase words and numbers; numbers lose thousands separators, currency
  signs and trailing zero cents, so "$1,150" and "1150.00" are the same token.
- A fact matches a text when every number of the fact and at least `LEXICAL_RECALL` of
  its content words (compared by 5-letter stem) reappear.
- An answer span is the fact's most specific detail: a number with its unit, else a
  proper name, else the last content word, so exact-match scoring has one target.
- A text states an answer when the span's words appear consecutively, or when all its
  key tokens appear anywhere in it: the numbers when the span has one ("9 years" ->
  "9", since a document says "turned 9"), else its content words, plural-insensitive
  ("Mercy Hospital" is stated by "the hospital, Mercy"). Key tokens are exact words,
  not stems: stating the answer is a stricter test than matching the fact.
"""

from __future__ import annotations

import math
import re

LEXICAL_RECALL = 0.6
EVIDENCE_RECALL = 0.7
STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an the and or but of to in on at for with from by as is am are was were be been being "
        "i me my mine we our us you your he she his her they their it its this that these those "
        "have has had do does did not no so very just about into over than then there here who "
        "what when where which while every each some any all also usually often really ",
    )
)
NUMBER_SPAN = re.compile(
    r"\$?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|percent|years?|months?|weeks?|days?|hours?|minutes?|"
    r"miles?|pounds?|lbs|kg|dollars?))?"
)
NAME_SPAN = re.compile(r"\b[A-Z][\w'&.-]*(?:\s+(?:of |de |the |and )?[A-Z][\w'&.-]*)*")


def words(text: str) -> list[str]:
    """Lowercase word tokens; numbers lose thousands separators and currency signs."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    return [_number(w) if w[0].isdigit() else w for w in re.findall(r"[a-z]+|\d+(?:\.\d+)?", text)]


def _number(word: str) -> str:
    """`1150.00` and `1150` are the same amount."""
    return word.rstrip("0").rstrip(".") if "." in word else word


def stem(word: str) -> str:
    """A crude stem (first five letters): enough to match "lived" with "live"."""
    return word[:5]


def lexical_match(statement: str, body: str) -> bool:
    """True when every number and at least `LEXICAL_RECALL` of the content words reappear."""
    fact = [w for w in words(statement) if w not in STOPWORDS]
    if not fact:
        return False
    doc = set(words(body))
    doc_stems = {stem(w) for w in doc}
    numbers = [w for w in fact if w[0].isdigit()]
    if any(n not in doc for n in numbers):
        return False
    content = [w for w in fact if not w[0].isdigit()]
    if not content:
        return True
    hits = sum(stem(w) in doc_stems for w in content)
    return hits >= math.ceil(LEXICAL_RECALL * len(content))


def evidence_in(quote: str, body: str) -> bool:
    """The judge's quote really is in the document (most of its words, in any order)."""
    quoted = [w for w in words(quote) if w not in STOPWORDS]
    doc = set(words(body))
    return bool(quoted) and sum(w in doc for w in quoted) >= EVIDENCE_RECALL * len(quoted)


def answer_span(statement: str) -> str | None:
    """The most specific span of a statement: number (+unit), proper name, last content word."""
    text = statement.strip()
    number = NUMBER_SPAN.search(text)
    if number:
        return number.group(0).strip()
    names = [m.group(0) for m in NAME_SPAN.finditer(text) if m.start() > 0 and m.group(0) != "I"]
    if names:
        return names[0].rstrip(".")
    content = [w for w in re.findall(r"[A-Za-z][\w'-]*", text) if w.lower() not in STOPWORDS]
    content = [w for w in content if len(w) > 3]
    return content[-1] if content else None


def contains_span(span: str, body: str) -> bool:
    """The span's words appear consecutively in the body (case, commas, cents ignored)."""
    needle = " ".join(words(span))
    return bool(needle) and f" {needle} " in f" {' '.join(words(body))} "


def _singular(word: str) -> str:
    if word[0].isdigit() or len(word) <= 3 or word.endswith("ss"):
        return word
    return word.removesuffix("s")


def key_tokens(span: str) -> set[str]:
    """The tokens a text must hold to state `span`: its numbers, else its content words."""
    tokens = words(span)
    numbers = {w for w in tokens if w[0].isdigit()}
    return numbers or {_singular(w) for w in tokens if w not in STOPWORDS}


def states_answer(span: str, body: str) -> bool:
    """The body states the answer span: consecutively, or all its key tokens anywhere."""
    if contains_span(span, body):
        return True
    keys = key_tokens(span)
    return bool(keys) and keys <= {_singular(w) for w in words(body)}


def mentions_fact(statement: str, span: str, body: str) -> bool:
    """The body gives away a fact: it matches the fact, holds its answer span, or states the
    answer's key tokens next to another content word of the fact ("Sofia turned 9" gives
    away "My daughter Sofia is 9 years old"; "9am pickleball" does not)."""
    if lexical_match(statement, body) or contains_span(span, body):
        return True
    if not states_answer(span, body):
        return False
    answer = {stem(w) for w in words(span)}
    context = {stem(w) for w in words(statement) if w not in STOPWORDS} - answer
    return bool(context & {stem(w) for w in words(body)})
