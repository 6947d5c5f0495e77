"""Critic evaluation: corrupt accepted conversations in known ways, count what each expert catches.

Usage: .venv/bin/python benchmarks/critic_eval.py [--personas 80] [--per-persona 3]
       [--release outputs/releases/NAME/VERSION] [--llm none|embedded] [--llm-sample 3]

Prints one JSON object (`build_report`):
`{"deterministic": {expert: {corruption: {"detection_rate", "cases"}, "false_alarm_rate"}},
"llm": {judge: {...same, + "no_verdict" per corruption, "originals_no_verdict"}},
"setup": {"source", "originals", "cases", "seed", "llm", "load_average"}}`; experts report
only the corruptions they own (`OWNERS`), and "deterministic" and "llm" hold nothing but
experts (how the run was set up is under "setup"; "llm" is `{}` without `--llm`).

Method:
- Originals: accepted conversations. By default they are produced on the loopback test
  server (`tests/llm_server.py`) with the plausible responder (`tests/plausible.py`), as
  the tests do: census skeletons (adults) enriched into personas with fact ledgers, paired
  (`--per-persona` conversations each, every scenario of the catalog), half the pairs in
  `one_call` mode and half `turn_by_turn`. `--release` takes a release's accepted
  conversations and personas instead. Either way the originals already passed every
  gate, so a gate's false-alarm rate on them is 0 by selection unless the expert changed
  since. For that reason the originals also hold conversations not generated to please
  the critics: the 4 hand-written exemplars of `seeds/exemplars/` (no fact ledgers) and
  the 6 natural conversations of `NATURAL` below (with facts), written for this benchmark;
  they are corrupted like the others.
- Each corruption is a pure function `(draft, dialogue, rng) -> Draft | None` (None: not
  applicable, e.g. no fact was revealed to contradict), seeded per conversation:
  `contradict_fact` (a revealed fact said negated), `swap_facts` (each speaker says the
  partner's revealed fact as its own), `duplicate_turn` (a turn repeats the speaker's own
  earlier turn or parrots the partner's last one), `truncate` (the talk stops mid-sentence
  in a random turn), `profile_dump` (a turn carries a profile: key-value pairs, a bullet
  list or several facts in a row), `switch_language` (a speaker, a single turn or the rest
  of the talk switches to Spanish or French, from the sentence lists below, written for
  this benchmark).
- Deterministic experts run on every original and every corruption. The LLM judges
  (`--llm embedded`: the embedded model, started as `benchmarks/converse.py` does; combined
  panel by default) run on `--llm-sample` originals and as many cases per corruption.
  A judge that gives no valid verdict counts as not detecting (`no_verdict` says how often).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personafoundry.config import ConverseConfig, RunConfig
from personafoundry.conversation_critics import (
    RULES,
    Dialogue,
    Draft,
    Fact,
    Speaker,
    facts_in_text,
    name_words,
)
from personafoundry.conversation_drafts import build_dialogues

SEED = 23
Corruption = Callable[[Draft, Dialogue, random.Random], "Draft | None"]
# sentences people say in small talk, written for this benchmark; {p} = the partner's name
SPANISH = (
    "Hola {p}, ¿qué tal todo por aquí?",
    "La verdad es que estoy muy cansada esta semana.",
    "Mi hermana vive cerca del centro y siempre me invita a cenar.",
    "¿Tú también trabajas los fines de semana?",
    "Me encanta caminar por el parque cuando hace sol.",
    "Ayer fuimos al mercado y compramos muchas frutas.",
    "No sé si voy a poder ir a la fiesta.",
    "Bueno, tengo que irme, nos vemos pronto.",
    "¿Cuánto tiempo llevas viviendo en este barrio?",
    "Mi perro se pone muy nervioso cuando llueve.",
    "El trabajo en la oficina ha sido una locura.",
    "Gracias por la ayuda, de verdad te lo agradezco.",
    "Los niños empiezan la escuela la semana que viene.",
    "Creo que el café de aquí es el mejor.",
)
FRENCH = (
    "Salut {p}, comment ça va aujourd'hui ?",
    "Je suis vraiment fatigué après cette longue journée.",
    "Ma fille commence l'école lundi prochain.",
    "Tu travailles aussi le week-end, non ?",
    "On a mangé dans un petit restaurant près de la gare.",
    "Je ne sais pas encore si je peux venir.",
    "Bon, je dois y aller, à bientôt.",
    "Depuis combien de temps est-ce que tu habites ici ?",
    "Il fait beaucoup trop chaud pour cette saison.",
    "Mon frère m'a aidé à repeindre la cuisine.",
    "Merci beaucoup, c'est très gentil de ta part.",
    "Le marché du samedi est toujours plein de monde.",
    "J'ai commencé un nouveau travail le mois dernier.",
    "Nous allons chez mes parents pour les vacances.",
)
LANGUAGES = {"es": SPANISH, "fr": FRENCH}
# natural conversations written for this benchmark (not generated to please the critics):
# (scenario, (name, facts), (name, facts), turns as (0|1, text)); false alarms on them count
NATURAL = [
    ("Two neighbours chat over the fence on a Saturday morning.",
     ("Grace Kim", ["I teach third grade at Lincoln Elementary.", "I have a golden retriever named Biscuit."]),
     ("Walt Brown", ["I retired from the post office in 2015.", "I grow pumpkins for the county fair."]),
     [(0, "Morning, Walt! Those pumpkins are getting huge."), (1, "Ha, thanks. I'm aiming for the county fair again this year."),
      (0, "Biscuit keeps trying to dig under the fence to see them, sorry about that."),
      (1, "He's fine, I'd rather have him than the raccoons. Since I left the post office I've got nothing but time for them."),
      (0, "Lucky you. I've got a stack of third grade spelling tests waiting for me."), (1, "Better you than me. Good luck with those!")]),
    ("A customer and a barista talk while the espresso machine warms up.",
     ("Nina Patel", ["I am training for the Chicago marathon.", "I work the early shift at a bakery café."]),
     ("Leo Martin", ["I just moved to Chicago from Denver.", "I design websites for small businesses."]),
     [(1, "Is it always this quiet at six?"), (0, "Pretty much until seven, then it's chaos. Just moved here?"),
      (1, "Three weeks ago, from Denver. Still figuring out which way the lake is."),
      (0, "East, always east. I run along it most mornings before my shift, I'm doing the marathon in October."),
      (1, "Wow, good for you. I mostly sit at a laptop building websites, so that sounds exhausting."),
      (0, "It is! Here's your latte, welcome to the neighborhood.")]),
    ("Two coworkers wait for a delayed meeting to start.",
     ("Omar Haddad", ["I manage the payroll team.", "My twins started kindergarten this fall."]),
     ("Beth Young", ["I commute 45 minutes by train.", "I play cello in a community orchestra."]),
     [(0, "Another meeting that starts ten minutes late, classic."), (1, "At least I got to finish my coffee. The train was packed today."),
      (0, "How long is your commute again?"), (1, "About 45 minutes each way. I practice my cello parts in my head."),
      (0, "That's dedication. My twins just started kindergarten, so my mornings are pure chaos now."),
      (1, "Oh, that's a big step! Are they liking it?"), (0, "One loves it, one cried for a week. Payroll is calmer, honestly."),
      (1, "Shut up, really? Payroll calmer than kids? Okay, here they come.")]),
    ("Two strangers share a table at a busy food truck festival.",
     ("Rosa Alvarez", ["I run a small catering business in San Antonio.", "My grandmother taught me to make tamales."]),
     ("Dan Cooper", ["I drive a forklift at a warehouse.", "I coach my son's Little League team."]),
     [(1, "Mind if I sit here? Every other table is full."), (0, "Go ahead. Those brisket tacos look amazing."),
      (1, "They're great. Are you here for work or just eating?"),
      (0, "Bit of both, I do catering in San Antonio, so I like to check out the competition."),
      (1, "Smart. I just came from my son's Little League game, we won 7 to 3."),
      (0, "Congrats! My abuela would say the tamales here need more lard, but don't tell anyone."),
      (1, "Your secret's safe with me. Enjoy the rest of the festival!")]),
    ("A patient and a nurse chat during a routine check-up.",
     ("Helen Moore", ["I am a retired librarian.", "I walk two miles every morning with my sister."]),
     ("Kevin Ortiz", ["I have been a nurse for twelve years.", "I play bass in a church band."]),
     [(1, "Blood pressure looks good today, Helen. Still doing your walks?"), (0, "Every morning, two miles with my sister. She talks the whole way."),
      (1, "That probably helps more than anything I could prescribe."), (0, "How long have you been doing this job? You seem very calm."),
      (1, "Twelve years now. Sundays I play bass at church, that keeps me calm."),
      (0, "Well, after forty years shushing people at the library, I appreciate calm. See you in six months.")]),
    ("Two parents talk at a kids' birthday party.",
     ("Mike Chen", ["I work nights as a security guard.", "I am learning to speak Italian."]),
     ("Lisa Ford", ["I own a flower shop downtown.", "I ran my first half marathon in May."]),
     [(0, "I think the sugar is kicking in, look at them go."), (1, "Oh no. Those balloons came from my shop, so if they pop, blame me."),
      (0, "You have a shop? Which one?"), (1, "Petal & Stem, on Fifth. Mostly weddings these days."),
      (0, "Nice. I work nights at the hospital's security desk, so I'm running on zero sleep today."),
      (1, "Oof. I did my first half marathon in May and still felt better than you look, sorry!"),
      (0, "Ha, fair. I've been practicing Italian on my breaks, maybe I'll say it more politely... grazie, I guess."),
      (1, "Prego! Okay, cake time, let's go.")]),
]  # fmt: skip


# -- corruptions --------------------------------------------------------------------------
def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def fact_sentence(draft: Draft, d: Dialogue, s: Speaker, fact: Fact) -> tuple[int, int] | None:
    """(turn index, sentence index) of the first sentence of `s` that carries `fact`."""
    names = name_words(d)
    for i, (pid, text) in enumerate(draft.turns):
        if pid != s.persona_id:
            continue
        for j, sent in enumerate(sentences(text)):
            if facts_in_text(sent, (fact,), names):
                return i, j
    return None


def revealed(draft: Draft, d: Dialogue, s: Speaker) -> list[tuple[Fact, tuple[int, int]]]:
    """The speaker's facts that one of its sentences carries, with where."""
    out = []
    for fact in s.facts:
        where = fact_sentence(draft, d, s, fact)
        if where is not None:
            out.append((fact, where))
    return out


def replace_sentence(draft: Draft, where: tuple[int, int], new: str) -> Draft:
    i, j = where
    turns = list(draft.turns)
    parts = sentences(turns[i][1])
    parts[j] = new
    turns[i] = (turns[i][0], " ".join(parts))
    return Draft(tuple(turns))


NEGATIONS = [  # (pattern on the statement, replacement): the same claim, negated
    (r"^I am\b", "I am not"), (r"^I'm\b", "I'm not"), (r"^I was\b", "I was never"),
    (r"^I have (been|had|worked|lived|played|owned|always|never)\b", r"I have never \1"),
    (r"^I have\b", "I don't have"), (r"^I've\b", "I've never"),
    (r"^I (can|will|would|could|should)\b", r"I \1 not"),
    (r"^My (.+?) (is|are|was|were)\b", r"My \1 \2 not"),
    (r"^I (\w+ed)\b", r"I never \1"), (r"^I (\w+?)s?\b", r"I don't \1"),
]  # fmt: skip


def negate(statement: str) -> str:
    """A first-person fact contradicted in its own words ("I grow ..." -> "I don't grow ...")."""
    text = statement.strip()
    for pattern, repl in NEGATIONS:
        if re.match(pattern, text):
            out = re.sub(pattern, repl, text, count=1)
            return re.sub(r"\bnot never\b", "never", out)
    return f"It is not true that {text[0].lower()}{text[1:]}"


def contradict_fact(draft: Draft, d: Dialogue, rng: random.Random) -> Draft | None:
    """One revealed fact of one speaker is said negated where the speaker said it."""
    options = [(s, f, w) for s in d.speakers for f, w in revealed(draft, d, s)]
    if not options:
        return None
    _, fact, where = rng.choice(options)
    return replace_sentence(draft, where, negate(fact.statement))


def swap_facts(draft: Draft, d: Dialogue, rng: random.Random) -> Draft | None:
    """Each speaker's revealed fact is replaced by one the partner revealed, as its own."""
    a, b = (revealed(draft, d, s) for s in d.speakers)
    if not a or not b:
        return None
    (fa, wa), (fb, wb) = rng.choice(a), rng.choice(b)
    if wa[0] == wb[0]:
        return None
    return replace_sentence(replace_sentence(draft, wa, fb.statement), wb, fa.statement)


def duplicate_turn(draft: Draft, d: Dialogue, rng: random.Random) -> Draft | None:
    """A turn repeats the speaker's turn two back (self-repeat) or the partner's last (echo)."""
    n, turns = len(draft.turns), list(draft.turns)
    if n < 3:
        return None
    i = rng.randrange(2, n)
    back = 2 if rng.random() < 0.5 else 1
    turns[i] = (turns[i][0], turns[i - back][1])
    return Draft(tuple(turns))


def truncate(draft: Draft, d: Dialogue, rng: random.Random) -> Draft | None:
    """The conversation stops mid-sentence in a random turn (a generator cut off by tokens)."""
    i = rng.randrange(1, len(draft.turns))
    pid, text = draft.turns[i]
    toks = text.split()
    if len(toks) < 4:
        return None
    k = rng.randint(max(2, int(0.3 * len(toks))), max(2, int(0.8 * len(toks))))
    cut = " ".join(toks[:k]).rstrip(".,;:!?\"' ")
    return Draft((*draft.turns[:i], (pid, cut)))


def _key_values(s: Speaker, rng: random.Random) -> str:
    age = re.search(r"(\d+)-year-old ([^.]+?)(?: from ([^.]+))?\.", s.profile)
    pairs = [("Name", s.name)]
    if age:
        pairs += [("Age", age.group(1)), ("Occupation", age.group(2))]
        pairs += [("Location", age.group(3))] if age.group(3) else []
    pairs += [(f.category.capitalize(), f.statement.rstrip(".")) for f in s.facts[:3]]
    sep = rng.choice([", ", "; ", "\n"])
    return sep.join(f"{k}: {v}" for k, v in pairs)


def profile_dump(draft: Draft, d: Dialogue, rng: random.Random) -> Draft | None:
    """A turn of one speaker carries a profile: key-value pairs, bullets or facts in a row."""
    i = rng.randrange(len(draft.turns))
    pid, text = draft.turns[i]
    s = d.speaker(pid)
    if len(s.facts) < 3:
        return None
    facts = rng.sample(s.facts, 3)
    style = rng.choice(["key_values", "bullets", "facts_in_a_row", "about_me"])
    if style == "key_values":
        dump = _key_values(s, rng)
    elif style == "bullets":
        dump = "A bit about me:\n" + "\n".join(f"- {f.statement}" for f in facts)
    elif style == "facts_in_a_row":
        dump = " ".join(f.statement for f in facts)
    else:
        dump = "About me: " + "; ".join(f.statement.rstrip(".") for f in facts) + "."
    new = f"{text} {dump}" if rng.random() < 0.5 else dump
    return Draft((*draft.turns[:i], (pid, new), *draft.turns[i + 1 :]))


def _foreign_turn(pool: tuple[str, ...], partner: str, rng: random.Random, k: int) -> str:
    picked = rng.sample(pool, k)
    return " ".join(x.format(p=partner.split()[0]) for x in picked)


def switch_language(draft: Draft, d: Dialogue, rng: random.Random) -> Draft | None:
    """One speaker, one turn, or every turn from some point on, switches to Spanish/French."""
    pool = LANGUAGES[rng.choice(sorted(LANGUAGES))]
    n, turns = len(draft.turns), list(draft.turns)
    scope = rng.choice(["speaker", "turn", "from_turn"])
    if scope == "speaker":
        who = rng.choice(d.speakers).persona_id
        picked = [i for i, (pid, _) in enumerate(turns) if pid == who]
    elif scope == "turn":
        picked = [rng.randrange(n)]
    else:
        picked = list(range(rng.randrange(1, n), n))
    for i in picked:
        pid = turns[i][0]
        turns[i] = (pid, _foreign_turn(pool, d.partner(pid).label, rng, rng.randint(1, 3)))
    return Draft(tuple(turns))


CORRUPTIONS: dict[str, Corruption] = {
    "contradict_fact": contradict_fact,
    "swap_facts": swap_facts,
    "duplicate_turn": duplicate_turn,
    "truncate": truncate,
    "profile_dump": profile_dump,
    "switch_language": switch_language,
}
# which expert is responsible for catching which corruption
OWNERS = {
    "deterministic": {
        "speaker_identity": ["swap_facts"],
        "repetition": ["duplicate_turn"],
        "length": ["truncate"],
        "leakage": ["profile_dump"],
        "language": ["switch_language"],
        # owners of no corruption still report their false-alarm rate
        **{name: [] for name in ("turn_structure", "placeholders", "safety", "fact_use")},
    },
    "llm": {
        "faithfulness": ["contradict_fact", "swap_facts"],
        "coherence": ["duplicate_turn", "truncate", "switch_language"],
        "naturalness": ["profile_dump", "duplicate_turn"],
        "engagement": [],
    },
}


def corrupt_all(
    originals: list[tuple[Draft, Dialogue]], seed: int = SEED
) -> dict[str, list[tuple[Draft, Dialogue]]]:
    """Every applicable corruption of every original, seeded per conversation and kind."""
    out: dict[str, list[tuple[Draft, Dialogue]]] = {name: [] for name in CORRUPTIONS}
    for draft, d in originals:
        for name, fn in CORRUPTIONS.items():
            bad = fn(draft, d, random.Random(f"{seed}:{d.conversation_id}:{name}"))
            if bad is not None and bad != draft:
                out[name].append((bad, d))
    return out


# -- originals ----------------------------------------------------------------------------
def drafts_from_tables(
    conversations: pa.Table, personas: pa.Table, cfg: ConverseConfig
) -> list[tuple[Draft, Dialogue]]:
    """(Draft, Dialogue) of every conversation whose personas are in `personas`."""
    rows = conversations.to_pylist()
    pairs = pa.Table.from_pylist(
        [{k: r[k] for k in ("conversation_id", "persona_ids", "scenario")} for r in rows]
    )
    dialogues, _ = build_dialogues(pairs, personas, cfg, SEED)
    by_id = {r["conversation_id"]: r for r in rows}
    return [
        (Draft(tuple((t["speaker_id"], t["text"]) for t in by_id[d.conversation_id]["turns"])), d)
        for d in dialogues
    ]


def exemplar_originals(cfg: ConverseConfig) -> list[tuple[Draft, Dialogue]]:
    """The hand-written exemplars as originals (speakers without fact ledgers)."""
    from personafoundry.converse import load_exemplars

    out = []
    for ex in load_exemplars():
        labels = list(dict.fromkeys(t["speaker"] for t in ex["turns"]))[:2]
        speakers = tuple(Speaker(f"per_ex_{lb}", lb, lb, "", (), ()) for lb in labels)
        d = Dialogue(f"ex_{ex['exemplar_id']}", ex["scenario"], speakers, len(ex["turns"]), cfg)
        ids = {s.label: s.persona_id for s in speakers}
        out.append((Draft(tuple((ids[t["speaker"]], t["text"]) for t in ex["turns"])), d))
    return out


def natural_originals(cfg: ConverseConfig) -> list[tuple[Draft, Dialogue]]:
    """The hand-written natural conversations of `NATURAL`, with their speakers' facts."""
    out = []
    for k, (scenario, a, b, turns) in enumerate(NATURAL):
        speakers = tuple(
            Speaker(
                f"per_nat{k}{i}", name, name.split()[0], "",
                tuple(Fact(f"fct_nat{k}{i}{j}", "misc", f) for j, f in enumerate(facts)), (),
            )
            for i, (name, facts) in enumerate((a, b))
        )  # fmt: skip
        d = Dialogue(f"nat_{k}", scenario, speakers, len(turns), cfg)
        out.append((Draft(tuple((speakers[i].persona_id, t) for i, t in turns)), d))
    return out


def release_originals(path: Path, cfg: ConverseConfig) -> list[tuple[Draft, Dialogue]]:
    data = path / "data"
    return drafts_from_tables(
        pq.read_table(data / "conversations.parquet"), pq.read_table(data / "personas.parquet"), cfg
    )


async def _generate_on_test_server(
    n_personas: int, per_persona: int, tmp: Path
) -> tuple[pa.Table, pa.Table, ConverseConfig]:
    sys.path.insert(0, str(ROOT / "tests"))
    from llm_server import LlmServer
    from plausible import Plausible

    from personafoundry.cache import ResponseCache
    from personafoundry.census import sample_personas
    from personafoundry.converse import generate_conversations
    from personafoundry.endpoints import resolve_remote
    from personafoundry.enrich import enrich_personas
    from personafoundry.llm import LlmClient
    from personafoundry.pairing import pair_personas

    server = LlmServer(models=["test-model"], responder=Plausible()).start()
    try:
        endpoint = {"base_url": server.base_url, "model": "test-model", "dialect": "openai"}
        cfg = RunConfig.model_validate(
            {
                "llm": {"generator": endpoint, "critic": {**endpoint, "temperature": 0.0}},
                "personas": {"census_age_min": 18},
                "converse": {"per_persona": per_persona, "judges": "combined"},
            }
        )
        skeletons = sample_personas(n_personas, cfg.personas, rng_seed=SEED).table
        endpoints = {r: resolve_remote(r, getattr(cfg.llm, r)) for r in ("generator", "critic")}
        async with LlmClient(endpoints, ResponseCache(tmp / "c.sqlite"), run_id="eval") as llm:
            personas = (await enrich_personas(skeletons, cfg.personas, llm, rng_seed=SEED)).table
            pairs = pair_personas(personas, cfg.converse, rng_seed=SEED).table
            half = pairs.num_rows // 2
            tables = []
            for mode, part in (
                ("one_call", pairs.slice(0, half)),
                ("turn_by_turn", pairs.slice(half)),
            ):
                conv = cfg.converse.model_copy(update={"mode": mode})
                result = await generate_conversations(part, personas, conv, llm, rng_seed=SEED)
                tables.append(result.table)
        return pa.concat_tables(tables), personas, cfg.converse
    finally:
        server.stop()


def test_server_originals(n_personas: int, per_persona: int) -> list[tuple[Draft, Dialogue]]:
    with tempfile.TemporaryDirectory() as tmp:
        convs, personas, cfg = asyncio.run(
            _generate_on_test_server(n_personas, per_persona, Path(tmp))
        )
    return drafts_from_tables(convs, personas, cfg)


# -- scoring ------------------------------------------------------------------------------
def rule_flags(draft: Draft, d: Dialogue) -> set[str]:
    """The deterministic experts that flag this draft."""
    return {name for name, check in RULES.items() if check(draft, d)}


def rates(
    flags_orig: list[set[str]], flags_bad: dict[str, list[set[str]]], owners: dict[str, list[str]]
) -> dict[str, Any]:
    """Per expert: detection rate on each owned corruption, false-alarm rate on originals."""
    out: dict[str, Any] = {}
    for expert, owned in owners.items():
        row: dict[str, Any] = {}
        for c in owned:
            cases = flags_bad.get(c, [])
            hit = sum(expert in f for f in cases)
            rate = round(hit / len(cases), 4) if cases else None
            row[c] = {"detection_rate": rate, "cases": len(cases)}
        fa = sum(expert in f for f in flags_orig)
        row["false_alarm_rate"] = round(fa / len(flags_orig), 4) if flags_orig else None
        out[expert] = row
    return out


def deterministic_rates(
    originals: list[tuple[Draft, Dialogue]], corrupted: dict[str, list[tuple[Draft, Dialogue]]]
) -> dict[str, Any]:
    orig = [rule_flags(dr, d) for dr, d in originals]
    bad = {c: [rule_flags(dr, d) for dr, d in cases] for c, cases in corrupted.items()}
    return rates(orig, bad, OWNERS["deterministic"])


async def _judge_flags(
    cases: list[tuple[Draft, Dialogue]], llm: Any, mode: str
) -> tuple[list[set[str]], int]:
    """The judges that fail each case, and how many cases got no valid verdict."""
    from personafoundry.conversation_judges import llm_judges

    flags, no_verdict = [], 0
    for draft, d in cases:
        verdicts = []
        for judge in llm_judges(mode):
            verdicts += await judge.judge_many(draft, d, llm, seed=SEED)
        no_verdict += any(v.score is None for v in verdicts)
        flags.append({v.expert for v in verdicts if not v.passed})
    return flags, no_verdict


async def llm_rates(
    originals: list[tuple[Draft, Dialogue]], corrupted: dict[str, list[tuple[Draft, Dialogue]]],
    sample: int, mode: str, tmp: Path,
) -> dict[str, Any]:  # fmt: skip
    """The LLM judges' rates on the embedded model, per expert (see `llm_section`)."""
    from personafoundry.cache import ResponseCache
    from personafoundry.embedded import EmbeddedServer
    from personafoundry.endpoints import resolve_embedded
    from personafoundry.llm import LlmClient

    cfg = RunConfig.model_validate({"llm": {"critic": {"temperature": 0.0, "max_tokens": 400}}})
    rng = random.Random(SEED)
    picks = {c: rng.sample(cases, min(sample, len(cases))) for c, cases in corrupted.items()}
    with EmbeddedServer(cfg.embedded) as server:
        endpoints = {
            role: resolve_embedded(role, getattr(cfg.llm, role), server.base_url, server.model)
            for role in ("generator", "critic")
        }
        async with LlmClient(endpoints, ResponseCache(tmp / "j.sqlite"), run_id="eval-llm") as llm:
            chosen = rng.sample(originals, min(sample, len(originals)))
            orig, none_orig = await _judge_flags(chosen, llm, mode)
            bad, none_bad = {}, {}
            for c, cases in picks.items():
                bad[c], none_bad[c] = await _judge_flags(cases, llm, mode)
    return llm_section(orig, bad, none_orig, none_bad)


def llm_section(
    flags_orig: list[set[str]], flags_bad: dict[str, list[set[str]]], none_orig: int,
    none_bad: dict[str, int],
) -> dict[str, Any]:  # fmt: skip
    """`rates` of the LLM judges plus how many cases got no valid verdict; experts only."""
    out = rates(flags_orig, flags_bad, OWNERS["llm"])
    for expert, row in out.items():
        for c in OWNERS["llm"][expert]:
            row[c]["no_verdict"] = none_bad.get(c, 0)
        row["originals_no_verdict"] = none_orig
    return out


def build_report(
    deterministic: dict[str, Any], llm: dict[str, Any], setup: dict[str, Any]
) -> dict[str, Any]:
    """The printed object: expert sections keyed by expert only, run facts under "setup"."""
    for section, experts in (("deterministic", deterministic), ("llm", llm)):
        unknown = sorted(set(experts) - set(OWNERS[section]))
        if unknown:
            raise ValueError(f"critic_eval: {section} holds {unknown}, which are not experts")
    return {"deterministic": deterministic, "llm": llm, "setup": setup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--personas", type=int, default=80)
    parser.add_argument("--per-persona", type=int, default=3)
    parser.add_argument("--release", type=Path, default=None)
    parser.add_argument("--llm", choices=["none", "embedded"], default="none")
    parser.add_argument("--llm-sample", type=int, default=3)
    parser.add_argument("--judges", choices=["combined", "separate"], default="combined")
    parser.add_argument("--show-misses", type=int, default=0, help="print misses to stderr")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    load_start = os.getloadavg()
    if args.release:
        originals = release_originals(args.release, ConverseConfig())
    else:
        originals = test_server_originals(args.personas, args.per_persona)
    originals += exemplar_originals(ConverseConfig()) + natural_originals(ConverseConfig())
    corrupted = corrupt_all(originals)
    if args.show_misses:
        show_misses(originals, corrupted, args.show_misses)
    llm: dict[str, Any] = {}
    if args.llm == "embedded":
        with tempfile.TemporaryDirectory() as tmp:
            llm = asyncio.run(
                llm_rates(originals, corrupted, args.llm_sample, args.judges, Path(tmp))
            )
    setup = {
        "source": f"release {args.release}"
        if args.release
        else f"test server (plausible), {args.personas} personas x {args.per_persona}",
        "originals": len(originals),
        "cases": {c: len(v) for c, v in corrupted.items()},
        "seed": SEED,
        "llm": None
        if args.llm == "none"
        else {"model": args.llm, "judges": args.judges, "sample_per_case": args.llm_sample},
        "load_average": [[round(x, 2) for x in load_start], [round(x, 2) for x in os.getloadavg()]],
    }
    out = build_report(deterministic_rates(originals, corrupted), llm, setup)
    print(json.dumps(out, indent=2, sort_keys=True))


def show_misses(originals: list, corrupted: dict, limit: int) -> None:
    """Print up to `limit` missed cases per owned corruption and false alarms (for reading)."""
    for expert, owned in OWNERS["deterministic"].items():
        check = RULES[expert]
        for c in owned:
            misses = [(dr, d) for dr, d in corrupted[c] if not check(dr, d)]
            for dr, _ in misses[:limit]:
                print(f"MISS {expert}/{c}: {json.dumps(dr.turns)[:600]}", file=sys.stderr)
        for dr, d in originals:
            if problems := check(dr, d):
                turns = json.dumps(dr.turns)[:400]
                print(f"FALSE ALARM {expert}: {problems[:2]} {turns}", file=sys.stderr)


if __name__ == "__main__":
    main()
