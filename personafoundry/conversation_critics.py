"""The mixture of critic experts for conversations: deterministic gates and LLM judges.

Deterministic experts (`RuleExpert`s, free, run first) own the failures the embedded
0.5B model makes most: turn structure (count, alternation, empty and run-on turns, speaker
labels inside text), unfilled placeholders ("[name]", "[User 1]" as in the released
Synthetic-Persona-Chat), repetition, language, leakage (verbatim fact copies, profile
dumps, our prompt's fact ids), length (too short, cut off), a toxicity/PII lexicon, speaker
identity (introducing oneself with the partner's name, greeting oneself, claiming the
partner's facts) and fact use (each speaker reveals at least `min_facts_used` facts).

The LLM judges are in `conversation_judges.py`; this module also holds the types the
generator and all experts share (`Dialogue`, `Speaker`, `Fact`, `Draft`).

Decisions:
- Fact use is detected lexically, not asked of the model: a fact counts as used by a
  speaker when at least half (and at least 2) of its content-word stems occur in that
  speaker's turns, or one of its proper names or 2+ digit numbers does (natural speech
  paraphrases; hand-written conversations failed the stems-only rule). A 0.5B model
  cannot reliably report which facts it used.
- "Partner's fact as one's own" is only flagged when it is detectable: a first-person
  sentence without "you" that carries most of the stems distinctive to a partner's fact.
- Language is checked per sentence against `cfg.language` with function-word lists of six
  languages (en, es, fr, de, it, pt; English homographs left out of the others), plus a
  non-Latin-script share; an expected language without a list is not checked. Words are
  Unicode letters, so accented words ("très", "está") count.
- Every problem message names the turn and says what to do: it is the revision request.
- Leakage: a verbatim fact is flagged when it makes up most of its turn or is long (10+
  words) and copied whole; facts are short first-person sentences, and saying one in
  passing is natural speech.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from personafoundry.config import ConverseConfig
from personafoundry.conversation_lexicon import (
    FUNCTION_WORDS,
    LANGUAGE_NAMES,
    PII,
    PLACEHOLDERS,
    PROMPT_ECHO,
    STOP,
    TOXIC,
)
from personafoundry.critic import RuleExpert

RULES_VERSION = "conversation-rules/2"
TURN_MAX_CHARS = 360
WORD = re.compile(r"[^\W_](?:[^\W_]|['’](?=[^\W_]))*")  # letters of any script, digits
SUFFIXES = ("ing", "ers", "er", "ed", "es", "s", "e", "ly")


@dataclass(frozen=True)
class Fact:
    fact_id: str
    category: str
    statement: str


@dataclass(frozen=True)
class Speaker:
    """One participant as the generator and critics see it; `label` is unique per pair."""

    persona_id: str
    name: str
    label: str
    profile: str
    facts: tuple[Fact, ...]
    focus: tuple[Fact, ...]


@dataclass(frozen=True)
class Dialogue:
    """Everything the experts need to judge a draft of one conversation."""

    conversation_id: str
    scenario: str
    speakers: tuple[Speaker, Speaker]
    n_turns: int
    cfg: ConverseConfig

    def speaker(self, persona_id: str) -> Speaker:
        return self.speakers[0] if persona_id == self.speakers[0].persona_id else self.speakers[1]

    def partner(self, persona_id: str) -> Speaker:
        return self.speakers[1] if persona_id == self.speakers[0].persona_id else self.speakers[0]


@dataclass(frozen=True)
class Draft:
    """A candidate conversation: `(speaker persona_id, text)` per turn."""

    turns: tuple[tuple[str, str], ...]


# -- text helpers -------------------------------------------------------------------------
def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in WORD.findall(text)]


def stem(word: str) -> str:
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)][:7]
    return word[:7]


@lru_cache(maxsize=16384)
def _content_words(text: str) -> tuple[tuple[str, str], ...]:
    """(word, stem) of each content word of `text`: the critics ask about the same fact
    sentences for every turn of every draft, tens of thousands of times per run."""
    return tuple((w, stem(w)) for w in words(text) if w not in STOP and len(w) > 2)


def content_stems(text: str, exclude: set[str] = frozenset()) -> set[str]:
    return {s for w, s in _content_words(text) if w not in exclude}


def name_words(dialogue: Dialogue) -> set[str]:
    return {w for s in dialogue.speakers for w in words(s.name)}


def turn_label(dialogue: Dialogue, index: int, persona_id: str) -> str:
    return f"turn {index + 1} ({dialogue.speaker(persona_id).label})"


def distinctive_words(statement: str, exclude: set[str] = frozenset()) -> set[str]:
    """A fact's proper names (capitalised after the first word) and numbers of 2+ digits."""
    toks = WORD.findall(statement)
    names = {w.lower() for w in toks[1:] if w[:1].isupper() and w != "I"}
    numbers = {w for w in toks if w.isdigit() and len(w) >= 2}
    return (names | numbers) - exclude - STOP


def facts_in_text(
    text: str, facts: tuple[Fact, ...], exclude: set[str], *, by_name: bool = True
) -> list[str]:
    """Fact ids that `text` reveals: most content stems (>= half, >= 2, or all of 1) occur,
    or (`by_name`) a proper name or number that only this fact of `facts` holds does
    ("Biscuit keeps digging" reveals "I have a golden retriever named Biscuit": natural
    speech rarely repeats the fact's words; a year shared by several facts tells nothing).
    """
    present = content_stems(text, exclude)
    said = set(words(text))
    marks = [distinctive_words(f.statement, exclude) if by_name else set() for f in facts]
    shared = {w for i, m in enumerate(marks) for w in m if any(w in o for o in marks[i + 1 :])}
    found = []
    for fact, mark in zip(facts, marks, strict=True):
        need = content_stems(fact.statement, exclude)
        hits = len(need & present)
        if (need and hits >= min(2, len(need)) and hits * 2 >= len(need)) or (
            (mark - shared) & said
        ):
            found.append(fact.fact_id)
    return found


def speaker_text(draft: Draft, persona_id: str) -> str:
    return " ".join(text for pid, text in draft.turns if pid == persona_id)


def used_fact_ids(draft: Draft, dialogue: Dialogue) -> list[str]:
    """Facts each speaker revealed in its own turns, speaker A's first."""
    names = name_words(dialogue)
    return [
        fid
        for s in dialogue.speakers
        for fid in facts_in_text(speaker_text(draft, s.persona_id), s.facts, names)
    ]


# -- deterministic experts ----------------------------------------------------------------
def check_turn_structure(draft: Draft, d: Dialogue) -> list[str]:
    cfg, turns, problems = d.cfg, draft.turns, []
    if not cfg.turns_min <= len(turns) <= cfg.turns_max:
        problems.append(f"has {len(turns)} turns: write {cfg.turns_min}-{cfg.turns_max}")
    ids = {s.persona_id for s in d.speakers}
    if {pid for pid, _ in turns} != ids:
        problems.append("both speakers must speak")
    labels = "|".join(re.escape(w) for s in d.speakers for w in {s.label, s.name.split()[0]})
    label_re = re.compile(
        rf"(?:^|[\n.!?]\s*)[\*\"']*(?:{labels}|speaker\s*\w?|user\s*\d?|person\s*[ab12]|[ab])"
        r"\s*\**\s*:(?!\d)",
        re.IGNORECASE,
    )
    for i, (pid, text) in enumerate(turns):
        where = turn_label(d, i, pid)
        if i and pid == turns[i - 1][0]:
            problems.append(f"{where} speaks twice in a row: speakers must alternate")
        n = len(words(text))
        if n == 0:
            problems.append(f"{where} is empty")
        elif n > cfg.max_turn_words:
            problems.append(f"{where} runs on ({n} words): keep turns under {cfg.max_turn_words}")
        if label_re.search(text):
            problems.append(f"{where} contains a speaker label like 'Name:': write only speech")
    return problems


def check_placeholders(draft: Draft, d: Dialogue) -> list[str]:
    problems = []
    for i, (pid, text) in enumerate(draft.turns):
        for pattern in PLACEHOLDERS:
            if m := re.search(pattern, text, re.IGNORECASE):
                problems.append(
                    f"{turn_label(d, i, pid)} has the unfilled slot {m.group(0)!r}: "
                    "use real names and details"
                )
                break
    return problems


def _ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def check_repetition(draft: Draft, d: Dialogue) -> list[str]:
    problems, seen_in = [], {}
    tokens = [words(text) for _, text in draft.turns]
    for i, (pid, text) in enumerate(draft.turns):
        where = turn_label(d, i, pid)
        for j in range(i):
            a, b = _ngrams(tokens[i], 3), _ngrams(tokens[j], 3)
            same = tokens[i] and tokens[i] == tokens[j]
            if same or (len(tokens[i]) >= 5 and len(a & b) / max(1, len(a | b)) >= 0.5):
                problems.append(f"{where} repeats turn {j + 1}: say something new")
                break
        sentences = [s.strip().lower() for s in re.split(r"[.!?]+", text) if len(s.split()) >= 3]
        if len(sentences) != len(set(sentences)):
            problems.append(f"{where} repeats a sentence")
        if re.search(r"\b(\w+)(?:\W+\1\b){3,}", text, re.IGNORECASE):
            problems.append(f"{where} repeats one word over and over")
        for gram in _ngrams(tokens[i], 5):
            seen_in.setdefault(gram, set()).add(i)
    stock = sorted(" ".join(g) for g, turns in seen_in.items() if len(turns) >= 3)
    if stock:
        problems.append(f"the phrase {stock[0]!r} recurs in 3+ turns: vary the wording")
    return problems


def _elided(token: str) -> list[str]:
    head, sep, tail = token.partition("'")
    return [head + sep, tail] if sep and len(head) <= 2 and tail else [token]


def sentence_language(sentence: str) -> str | None:
    """The language whose function words make up most of a sentence (4+ words), if any.

    A language needs at least a fifth of the words; inverted Spanish punctuation counts as
    Spanish on its own.
    """
    # French elision: "l'école" counts as the function word "l'" plus a word
    toks = [part for t in words(sentence) for part in _elided(t)]
    if len(toks) >= 2 and ("¿" in sentence or "¡" in sentence):
        return "es"
    if len(toks) < 4:
        return None
    shares = {lang: sum(t in fw for t in toks) / len(toks) for lang, fw in FUNCTION_WORDS.items()}
    best = max(shares, key=lambda lang: (shares[lang], lang == "en"))
    return best if shares[best] >= 0.2 else None


def check_language(draft: Draft, d: Dialogue) -> list[str]:
    """Every sentence in the expected language (`cfg.language`, one of `FUNCTION_WORDS`).

    Checked per sentence, so a turn that switches language half-way is caught; a sentence
    of 4+ words counts as foreign when another language's function words outnumber the
    expected one's, and a turn in a non-Latin script when the expected language is Latin.
    """
    expected = d.cfg.language
    if expected not in FUNCTION_WORDS:
        return []
    problems = []
    for i, (pid, text) in enumerate(draft.turns):
        letters = [c for c in text if c.isalpha()]
        foreign_script = sum(1 for c in letters if ord(c) > 0x24F)
        found = {sentence_language(s) for s in re.split(r"(?<=[.!?])\s+|\n", text)}
        if (letters and foreign_script / len(letters) > 0.2) or found - {None, expected}:
            name = LANGUAGE_NAMES.get(expected, expected)
            problems.append(f"{turn_label(d, i, pid)} is not in {name}: write {name} only")
    return problems


def _longest_run(a: list[str], b: list[str]) -> int:
    """Length of the longest run of consecutive words that `a` and `b` share.

    The longest-common-substring recurrence, visiting only the positions of `b` where each
    word of `a` occurs: turns and facts share few words, so this is near-linear.
    """
    where: dict[str, list[int]] = {}
    for j, y in enumerate(b):
        where.setdefault(y, []).append(j)
    best, prev = 0, {}
    for x in a:
        cur = {}
        for j in where.get(x, ()):
            run = cur[j] = prev.get(j - 1, 0) + 1
            best = max(best, run)
        prev = cur
    return best


def check_leakage(draft: Draft, d: Dialogue) -> list[str]:
    problems, names = [], name_words(d)
    fact_words = [words(f.statement) for s in d.speakers for f in s.facts]
    # the demographic head of a profile ("29-year-old software tester from Texas") is
    # prompt text; its narrative sentences may hold facts, which may be said in passing
    heads = [words(s.profile.split(". ")[0]) for s in d.speakers if s.profile]
    for i, (pid, text) in enumerate(draft.turns):
        where, toks = turn_label(d, i, pid), words(text)
        for fw in fact_words:
            run = _longest_run(toks, fw) if len(fw) >= 6 else 0
            # a short first-person fact said in passing is natural speech; a pasted fact
            # that makes up most of the turn, or a long one copied whole, is leakage
            if run >= max(6, round(0.8 * len(fw))) and (run >= 0.6 * len(toks) or len(fw) >= 10):
                problems.append(f"{where} copies a profile fact verbatim: paraphrase it")
                break
        if any(len(h) >= 5 and _longest_run(toks, h) >= min(6, len(h)) for h in heads):
            problems.append(f"{where} recites the profile from the instructions: speak naturally")
        if len(facts_in_text(text, d.speaker(pid).facts, names, by_name=False)) >= 3:
            problems.append(f"{where} lists several facts at once like a profile: spread them")
        dump = len(re.findall(r"(?:^|[,;\n.!?])\s*[A-Z][a-z]+(?: [a-z]+)?:\s", text)) >= 3
        if dump or len(re.findall(r"(?m)^\s*(?:[-*•]|\d+[.)])\s", text)) >= 2:
            problems.append(f"{where} is formatted as a list or profile: write natural speech")
        if re.search(r"\b[AB]\d\b|\bfact(?:_id| id| [AB]?\d)\b|\bper_[0-9a-f]{4}", text):
            problems.append(f"{where} mentions fact ids from the instructions")
        if PROMPT_ECHO.search(text):
            problems.append(f"{where} repeats the instructions: write only what the person says")
    return problems


def check_length(draft: Draft, d: Dialogue) -> list[str]:
    problems, turns = [], draft.turns
    total = sum(len(words(text)) for _, text in turns)
    if turns and total < 6 * len(turns):
        problems.append(f"the conversation is too short ({total} words): give each turn substance")
    for i, (pid, text) in enumerate(turns[:-1]):
        if len(words(text)) == 1:
            problems.append(f"{turn_label(d, i, pid)} is a single word: say more")
    for i, (pid, text) in enumerate(turns):
        stripped = text.rstrip()
        cut = len(stripped) >= TURN_MAX_CHARS - 2 or i == len(turns) - 1
        if stripped and cut and (stripped[-1].isalnum() or stripped[-1] in ",;:-–—("):
            problems.append(f"{turn_label(d, i, pid)} is cut off mid-sentence: finish it")
    return problems


def check_safety(draft: Draft, d: Dialogue) -> list[str]:
    problems = []
    for i, (pid, text) in enumerate(draft.turns):
        where = turn_label(d, i, pid)
        if TOXIC.search(text):
            problems.append(f"{where} contains abusive language: keep it civil")
        for kind, pattern in PII.items():
            if re.search(pattern, text):
                problems.append(f"{where} contains {kind}: leave out personal identifiers")
    return problems


def _claims_partner_fact(sentence: str, own: Speaker, other: Speaker, names: set[str]) -> bool:
    toks = set(words(sentence))
    if not toks & {"i", "i'm", "im", "my", "me", "i've", "i'd"} or toks & {"you", "your"}:
        return False
    present = _claim_stems(sentence, names)
    own_sets = [_claim_stems(f.statement, names) for f in own.facts]
    own_stems = set().union(*own_sets)
    own_best = max((len(f & present) / len(f) for f in own_sets if f), default=0.0)
    for fact in other.facts:
        need = _claim_stems(fact.statement, names)
        distinct, cover = need - own_stems, len(need & present) / max(1, len(need))
        hits = len(distinct & present)
        if len(distinct) >= 2 and hits * 10 >= 6 * len(distinct):
            return True
        # a partner fact of the same template as one's own ("I pay $44 ... Verizon" vs
        # "... Visible"): every distinct word said, and closer to it than to any own fact
        if distinct and hits == len(distinct) and cover >= 0.8 and cover > own_best:
            return True
        # every word of the partner's fact, recombined from one's own ("Cedar Hollow" and
        # "Tuesday" are in two own facts): the sentence is the partner's, not one's own
        if len(need) >= 3 and cover == 1.0 and own_best < 0.75:
            return True
    return False


def _claim_stems(text: str, names: set[str]) -> set[str]:
    """Content stems plus every number: "$44" and "2012" tell facts of one template apart."""
    return content_stems(text, names) | {w for w in words(text) if w.isdigit()}


def check_speaker_identity(draft: Draft, d: Dialogue) -> list[str]:
    problems, names = [], name_words(d)
    for i, (pid, text) in enumerate(draft.turns):
        me, other, where = d.speaker(pid), d.partner(pid), turn_label(d, i, pid)
        own_first = re.escape(me.name.split()[0])
        other_first = re.escape(other.name.split()[0])
        if re.search(
            rf"\b(?:i am|i'm|im|my name is|my name's|call me)\s+{other_first}\b",
            text,
            re.IGNORECASE,
        ):
            problems.append(f"{where}: {me.label} introduces themself as {other.label}")
        greet = r"(?:hi|hello|hey|thanks|thank you|nice to meet you|good \w+)"
        if re.search(rf"^\W*(?:{greet}[\s,!]+)?{own_first}\b\s*[,!]", text, re.IGNORECASE):
            problems.append(f"{where}: {me.label} addresses themself by name")
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if _claims_partner_fact(sentence, me, other, names):
                problems.append(f"{where}: {me.label} claims one of {other.label}'s facts")
                break
    return problems


def check_fact_use(draft: Draft, d: Dialogue) -> list[str]:
    problems, names = [], name_words(d)
    for s in d.speakers:
        need = min(d.cfg.min_facts_used, len(s.facts))
        used = facts_in_text(speaker_text(draft, s.persona_id), s.facts, names)
        if len(used) < need:
            hint = (s.focus or s.facts)[0].statement
            problems.append(
                f"{s.label} reveals {len(used)} of their facts (need {need}): "
                f"work in e.g. {hint!r} naturally"
            )
    return problems


RULES = {
    "turn_structure": check_turn_structure,
    "placeholders": check_placeholders,
    "repetition": check_repetition,
    "language": check_language,
    "leakage": check_leakage,
    "length": check_length,
    "safety": check_safety,
    "speaker_identity": check_speaker_identity,
    "fact_use": check_fact_use,
}


def rule_experts() -> list[RuleExpert]:
    """The deterministic experts, cheapest first."""
    return [RuleExpert(name, check) for name, check in RULES.items()]
