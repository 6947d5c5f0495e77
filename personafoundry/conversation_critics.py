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
  speaker's turns. A 0.5B model cannot reliably report which facts it used.
- "Partner's fact as one's own" is only flagged when it is detectable: a first-person
  sentence without "you" that carries most of the stems distinctive to a partner's fact.
- Language is checked for English only (function-word ratios and non-Latin script);
  other languages pass with a note.
- Every problem message names the turn and says what to do: it is the revision request.
- Leakage: a verbatim fact is flagged when it makes up most of its turn or is long (10+
  words) and copied whole; facts are short first-person sentences, and saying one in
  passing is natural speech.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from personafoundry.config import ConverseConfig
from personafoundry.critic import RuleExpert

RULES_VERSION = "conversation-rules/2"
TURN_MAX_CHARS = 360
_STOP_TEXT = (
    "a an the and or but if so of to in on at for from by with about as into than then "
    "i me my mine we our you your he him his she her they them their it its this that these "
    "those is am are was were be been being do does did have has had will would can could "
    "should may might must just very really too also not no yes oh well what who how when "
    "where why which there here all some any more most much many one out up down over now "
    "get got go going like know think want lot im i'm it's that's don't"
)
_FOREIGN_TEXT = {
    "es": "el los las del que por para con una pero muy está estoy gracias hola también "
    "porque cuando tengo es y mi tu usted qué cómo",
    "fr": "le les des du une est et pour pas avec je vous nous mais suis très merci "
    "bonjour c'est qui dans",
    "de": "der das und ist nicht ein eine ich wir mit auf für von zu auch sehr danke "
    "hallo bin sind",
}
STOP = frozenset(_STOP_TEXT.split())
FOREIGN = {lang: frozenset(text.split()) for lang, text in _FOREIGN_TEXT.items()}
PLACEHOLDERS = [
    r"\[[^\]\n]{1,40}\]", r"\{[^}\n]{1,40}\}", r"<[^>\n]{1,40}>", r"_{3,}", r"\bX{3,}\b",
    r"\b(?:user|speaker|persona|person)\s*(?:[12]|[ab]\b)", r"lorem ipsum",
    r"\binsert (?:your|the|a) ", r"\byour name here\b",
    r"\((?:your |their |my )?(?:name|city|company|age|address|job|occupation)\)",
]  # fmt: skip
TOXIC = re.compile(
    r"\b(?:fuck\w*|shit\w*|bitch\w*|bastard|asshole|cunt|whore|slut|retard\w*|faggot|"
    r"kill yourself|i(?:'ll| will) kill you|go to hell)\b",
    re.IGNORECASE,
)
PII = {
    "an email address": r"\b[\w.+-]+@[\w-]+\.[\w.]+\b",
    "a phone number": r"\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b",
    "a social security number": r"\b\d{3}-\d{2}-\d{4}\b",
    "a card number": r"\b(?:\d[ -]?){13,16}\b",
    "a street address": r"\b\d{2,5}\s+[A-Z][a-z]+(?:\s[A-Z][a-z]+)?\s+"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd)\b",
}
# phrases of our own prompts and critic feedback that the embedded model pasted into turns
PROMPT_ECHO = re.compile(
    r"things \w+ can mention|reveals \d+ of their facts|work in e\.g\.|stay in character|"
    r"reply with json|an earlier draft|^\W*\w+ said:|about you \(",
    re.IGNORECASE | re.MULTILINE,
)
WORD = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9'’]*")
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


def content_stems(text: str, exclude: set[str] = frozenset()) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOP and w not in exclude and len(w) > 2}


def name_words(dialogue: Dialogue) -> set[str]:
    return {w for s in dialogue.speakers for w in words(s.name)}


def turn_label(dialogue: Dialogue, index: int, persona_id: str) -> str:
    return f"turn {index + 1} ({dialogue.speaker(persona_id).label})"


def facts_in_text(text: str, facts: tuple[Fact, ...], exclude: set[str]) -> list[str]:
    """Fact ids whose content stems mostly (>= half, >= 2, or all of 1) occur in `text`."""
    present = content_stems(text, exclude)
    found = []
    for fact in facts:
        need = content_stems(fact.statement, exclude)
        hits = len(need & present)
        if need and hits >= min(2, len(need)) and hits * 2 >= len(need):
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


def check_language(draft: Draft, d: Dialogue) -> list[str]:
    if d.cfg.language != "en":
        return []
    problems = []
    for i, (pid, text) in enumerate(draft.turns):
        letters = [c for c in text if c.isalpha()]
        foreign_script = sum(1 for c in letters if ord(c) > 0x24F)
        toks = words(text)
        en = sum(t in STOP for t in toks) / max(1, len(toks))
        other = max(sum(t in s for t in toks) / max(1, len(toks)) for s in FOREIGN.values())
        if (letters and foreign_script / len(letters) > 0.2) or (
            len(toks) >= 4 and other >= 0.15 and other > en
        ):
            problems.append(f"{turn_label(d, i, pid)} is not in English: write English only")
    return problems


def _longest_run(a: list[str], b: list[str]) -> int:
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def check_leakage(draft: Draft, d: Dialogue) -> list[str]:
    problems, names = [], name_words(d)
    all_facts = [f for s in d.speakers for f in s.facts]
    for i, (pid, text) in enumerate(draft.turns):
        where, toks = turn_label(d, i, pid), words(text)
        for fact in all_facts:
            fw = words(fact.statement)
            run = _longest_run(toks, fw) if len(fw) >= 6 else 0
            # a short first-person fact said in passing is natural speech; a pasted fact
            # that makes up most of the turn, or a long one copied whole, is leakage
            if run >= max(6, round(0.8 * len(fw))) and (run >= 0.6 * len(toks) or len(fw) >= 10):
                problems.append(f"{where} copies a profile fact verbatim: paraphrase it")
                break
        if len(facts_in_text(text, d.speaker(pid).facts, names)) >= 3:
            problems.append(f"{where} lists several facts at once like a profile: spread them")
        dump = len(re.findall(r"(?:^|[,;\n])\s*[A-Z][a-z]+(?: [a-z]+)?:\s", text)) >= 3
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
        if stripped and cut and stripped[-1].isalnum():
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
    present = content_stems(sentence, names)
    own_stems = set().union(*(content_stems(f.statement, names) for f in own.facts))
    for fact in other.facts:
        distinct = content_stems(fact.statement, names) - own_stems
        if len(distinct) >= 2 and len(distinct & present) * 10 >= 6 * len(distinct):
            return True
    return False


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
