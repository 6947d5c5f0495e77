"""The corruptions of `benchmarks/critic_eval.py` change what they claim, on hand-made cases."""

from __future__ import annotations

import importlib.util
import random
import re
import sys

import pytest

from personafoundry.config import ConverseConfig
from personafoundry.conversation_critics import (
    RULES,
    Dialogue,
    Draft,
    Fact,
    Speaker,
    facts_in_text,
    name_words,
    sentence_language,
    words,
)
from personafoundry.paths import PROJECT_ROOT

_spec = importlib.util.spec_from_file_location(
    "critic_eval", PROJECT_ROOT / "benchmarks" / "critic_eval.py"
)
ce = importlib.util.module_from_spec(_spec)
sys.modules["critic_eval"] = ce
_spec.loader.exec_module(ce)  # type: ignore[union-attr]

ROSA = Speaker(
    "per_00000000000000a1", "Rosa Diaz", "Rosa", "38-year-old baker from Texas. I love mornings.",
    (
        Fact("fa1", "work", "I bake sourdough bread at a small bakery in Austin."),
        Fact("fa2", "hobbies", "I paint watercolor landscapes on Sunday afternoons."),
        Fact("fa3", "family", "My brother Luis plays trumpet in a jazz band."),
        Fact("fa4", "pets", "I have a gray cat named Pepper."),
    ),
    (),
)  # fmt: skip
OTTO = Speaker(
    "per_00000000000000b2", "Otto Weber", "Otto", "61-year-old electrician from Ohio.",
    (
        Fact("fb1", "work", "I wire new houses for a builder in Columbus."),
        Fact("fb2", "hobbies", "I fly model airplanes at the county field."),
        Fact("fb3", "health", "I walk five miles every morning since my heart surgery."),
        Fact("fb4", "family", "My granddaughter Mia visits every summer."),
    ),
    (),
)  # fmt: skip
DIALOGUE = Dialogue(
    "conv_00000000000000c3", "Rosa and Otto chat in a waiting room.", (ROSA, OTTO), 6,
    ConverseConfig(turns_min=4, turns_max=8),
)  # fmt: skip
R, O = ROSA.persona_id, OTTO.persona_id
ORIGINAL = Draft(
    (
        (R, "Hi Otto, long wait today. I bake sourdough bread at a bakery in Austin. Up at four!"),
        (O, "Morning, Rosa. I wire new houses for a builder in Columbus, early starts for me too."),
        (R, "Do you get any time off? I paint watercolor landscapes on Sunday afternoons."),
        (O, "Model airplanes are my thing, I fly them at the county field when it is calm."),
        (R, "That sounds fun. Pepper, my gray cat, would chase them all day."),
        (O, "Ha, I bet. Looks like they are calling my name now, take care."),
    )
)  # fmt: skip
SEEDS = range(25)


def changed(a: Draft, b: Draft) -> list[int]:
    return [i for i, (x, y) in enumerate(zip(a.turns, b.turns, strict=False)) if x != y]


def rng(seed: int) -> random.Random:
    return random.Random(seed)


def test_the_original_passes_every_expert() -> None:
    assert {name: check(ORIGINAL, DIALOGUE) for name, check in RULES.items()} == {
        name: [] for name in RULES
    }


@pytest.mark.parametrize(
    ("statement", "negated"),
    [
        ("I bake sourdough bread.", "I don't bake sourdough bread."),
        ("I am a nurse.", "I am not a nurse."),
        ("I have a gray cat named Pepper.", "I don't have a gray cat named Pepper."),
        ("I have worked at Costco since 2005.", "I have never worked at Costco since 2005."),
        ("I moved to Ohio in 2009.", "I never moved to Ohio in 2009."),
        ("My cat is gray.", "My cat is not gray."),
        ("My brother Luis plays trumpet.", "It is not true that my brother Luis plays trumpet."),
    ],
)  # fmt: skip
def test_negate_contradicts_the_statement(statement: str, negated: str) -> None:
    assert ce.negate(statement) == negated


@pytest.mark.parametrize("seed", SEEDS)
def test_contradict_fact_negates_a_fact_the_speaker_revealed(seed: int) -> None:
    bad = ce.contradict_fact(ORIGINAL, DIALOGUE, rng(seed))
    [i] = changed(ORIGINAL, bad)
    speaker = DIALOGUE.speaker(bad.turns[i][0])
    negations = [ce.negate(f.statement) for f in speaker.facts]
    said = [n for n in negations if n in bad.turns[i][1]]
    assert said, bad.turns[i]
    fact = speaker.facts[negations.index(said[0])]
    assert facts_in_text(ORIGINAL.turns[i][1], (fact,), name_words(DIALOGUE))  # was revealed


@pytest.mark.parametrize("seed", SEEDS)
def test_swap_facts_gives_each_speaker_a_fact_of_the_partner(seed: int) -> None:
    bad = ce.swap_facts(ORIGINAL, DIALOGUE, rng(seed))
    turns = changed(ORIGINAL, bad)
    assert {bad.turns[i][0] for i in turns} == {R, O}
    for i in turns:
        pid, text = bad.turns[i]
        partner = DIALOGUE.partner(pid)
        assert any(f.statement in text for f in partner.facts), text
        assert not any(f.statement in text for f in DIALOGUE.speaker(pid).facts)


@pytest.mark.parametrize("seed", SEEDS)
def test_duplicate_turn_repeats_an_earlier_turn_verbatim(seed: int) -> None:
    bad = ce.duplicate_turn(ORIGINAL, DIALOGUE, rng(seed))
    [i] = changed(ORIGINAL, bad)
    assert [p for p, _ in bad.turns] == [p for p, _ in ORIGINAL.turns]  # speakers kept
    assert bad.turns[i][1] in {ORIGINAL.turns[i - 1][1], ORIGINAL.turns[i - 2][1]}


@pytest.mark.parametrize("seed", SEEDS)
def test_truncate_stops_mid_sentence_and_drops_the_rest(seed: int) -> None:
    bad = ce.truncate(ORIGINAL, DIALOGUE, rng(seed))
    last = len(bad.turns) - 1
    assert 2 <= len(bad.turns) <= len(ORIGINAL.turns)
    assert bad.turns[:last] == ORIGINAL.turns[:last]
    full, cut = ORIGINAL.turns[last][1], bad.turns[last][1]
    assert full.startswith(cut) and len(words(cut)) < len(words(full))
    assert cut[-1] not in ".!?"


@pytest.mark.parametrize("seed", SEEDS)
def test_profile_dump_puts_a_profile_into_one_turn(seed: int) -> None:
    bad = ce.profile_dump(ORIGINAL, DIALOGUE, rng(seed))
    [i] = changed(ORIGINAL, bad)
    pid, text = bad.turns[i]
    s = DIALOGUE.speaker(pid)
    key_values = len(re.findall(r"\b[A-Z][a-z]+: ", text)) >= 3
    bullets = len(re.findall(r"(?m)^- ", text)) >= 3
    stated = sum(f.statement.rstrip(".") in text for f in s.facts) >= 3
    assert key_values or bullets or stated, text


@pytest.mark.parametrize("seed", SEEDS)
def test_switch_language_rewrites_turns_in_spanish_or_french(seed: int) -> None:
    bad = ce.switch_language(ORIGINAL, DIALOGUE, rng(seed))
    turns = changed(ORIGINAL, bad)
    assert turns and len(bad.turns) == len(ORIGINAL.turns)
    pools = [
        {x.format(p=p) for x in pool for p in ("Rosa", "Otto")} for pool in ce.LANGUAGES.values()
    ]
    for i in turns:
        sents = ce.sentences(bad.turns[i][1])
        assert any(all(s in pool for s in sents) for pool in pools), bad.turns[i]
        assert {sentence_language(s) for s in sents} <= {"es", "fr"}


@pytest.mark.parametrize("name", sorted(ce.CORRUPTIONS))
def test_owning_expert_catches_each_corruption(name: str) -> None:
    owners = [e for e, owned in ce.OWNERS["deterministic"].items() if name in owned]
    for seed in SEEDS:
        bad = ce.CORRUPTIONS[name](ORIGINAL, DIALOGUE, rng(seed))
        assert bad is not None and bad != ORIGINAL
        for expert in owners:
            assert RULES[expert](bad, DIALOGUE), (expert, bad.turns)


def test_corrupt_all_skips_what_does_not_apply_and_is_seeded() -> None:
    no_facts = Draft(((R, "Hello there, how are you today?"), (O, "Fine, thanks for asking.")))
    out = ce.corrupt_all([(no_facts, DIALOGUE)])
    assert out["contradict_fact"] == [] and out["swap_facts"] == []
    assert ce.corrupt_all([(ORIGINAL, DIALOGUE)]) == ce.corrupt_all([(ORIGINAL, DIALOGUE)])


def test_rates_count_detections_and_false_alarms_per_owned_corruption() -> None:
    rates = ce.rates(
        [set(), {"length"}, set(), set()],
        {"truncate": [{"length"}, {"length"}, set()]},
        {"length": ["truncate"]},
    )
    assert rates == {
        "length": {"truncate": {"detection_rate": 0.6667, "cases": 3}, "false_alarm_rate": 0.25}
    }


def test_release_originals_rebuild_drafts_and_dialogues(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    people = [
        {"persona_id": s.persona_id, "name": s.name, "age": 40, "state": "Ohio",
         "occupation": "Baker", "narrative": "I like mornings.",
         "facts": [{"fact_id": f.fact_id, "category": f.category, "statement": f.statement}
                   for f in s.facts]}
        for s in (ROSA, OTTO)
    ]  # fmt: skip
    conv = {
        "conversation_id": DIALOGUE.conversation_id, "persona_ids": [R, O],
        "scenario": DIALOGUE.scenario,
        "turns": [{"speaker_id": p, "text": t} for p, t in ORIGINAL.turns],
    }  # fmt: skip
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(people), tmp_path / "data" / "personas.parquet")
    pq.write_table(pa.Table.from_pylist([conv]), tmp_path / "data" / "conversations.parquet")
    [(draft, d)] = ce.release_originals(tmp_path, ConverseConfig())
    assert draft == ORIGINAL
    assert [s.persona_id for s in d.speakers] == [R, O]
    assert [f.statement for f in d.speakers[0].facts] == [f.statement for f in ROSA.facts]


def test_llm_section_holds_only_experts_with_no_verdict_counts() -> None:
    owned = {c for cs in ce.OWNERS["llm"].values() for c in cs}
    bad = {c: [{"faithfulness", "coherence"}, set()] for c in owned}
    out = ce.llm_section([set(), {"naturalness"}], bad, 1, dict.fromkeys(owned, 1))
    assert set(out) == set(ce.OWNERS["llm"])
    faith = out["faithfulness"]
    assert faith["contradict_fact"] == {"detection_rate": 0.5, "cases": 2, "no_verdict": 1}
    assert faith["false_alarm_rate"] == 0.0 and faith["originals_no_verdict"] == 1
    assert out["naturalness"]["false_alarm_rate"] == 0.5
    assert out["engagement"] == {"false_alarm_rate": 0.0, "originals_no_verdict": 1}


def test_report_keeps_run_setup_out_of_the_expert_sections() -> None:
    det = ce.deterministic_rates([(ORIGINAL, DIALOGUE)], ce.corrupt_all([(ORIGINAL, DIALOGUE)]))
    setup = {"originals": 1, "llm": None}
    out = ce.build_report(det, {}, setup)
    assert list(out) == ["deterministic", "llm", "setup"] and out["setup"] == setup
    assert set(out["deterministic"]) == set(ce.OWNERS["deterministic"])
    for expert, row in out["deterministic"].items():
        assert set(row) == {*ce.OWNERS["deterministic"][expert], "false_alarm_rate"}
        for c in ce.OWNERS["deterministic"][expert]:
            assert set(row[c]) == {"detection_rate", "cases"}
    with pytest.raises(ValueError, match="_setup"):
        ce.build_report(det, {"_setup": {"model": "embedded"}}, setup)
