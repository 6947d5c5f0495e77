"""Every deterministic conversation expert on hand-made positive and negative cases."""

from __future__ import annotations

import asyncio

import pytest

from personafoundry.config import ConverseConfig
from personafoundry.conversation_critics import (
    RULES,
    Dialogue,
    Draft,
    Fact,
    Speaker,
    facts_in_text,
    rule_experts,
    used_fact_ids,
)
from personafoundry.conversation_judges import (
    check_fact_ids,
    faithfulness_verdict,
    mixture_accepts,
)
from personafoundry.critic import Verdict

MARIA = Speaker(
    "per_000000000000000a",
    "Maria Lopez",
    "Maria",
    "Maria Lopez, 41-year-old nurse from Ohio.",
    (
        Fact("fct_a1", "work", "Maria works night shifts as a nurse at a county hospital."),
        Fact("fct_a2", "hobby", "Maria grows tomatoes and peppers in her backyard garden."),
        Fact("fct_a3", "family", "Maria has two teenage sons who play soccer."),
    ),
    (),
)
JOHN = Speaker(
    "per_000000000000000b",
    "John Smith",
    "John",
    "John Smith, 67-year-old retired machinist from Ohio.",
    (
        Fact("fct_b1", "work", "John retired after forty years as a machinist at a tool factory."),
        Fact("fct_b2", "hobby", "John restores vintage motorcycles in his garage."),
        Fact("fct_b3", "pet", "John has an old beagle named Rusty."),
    ),
    (),
)
DIALOGUE = Dialogue(
    "conv_0000000000000001",
    "Maria and John are neighbours who run into each other by the mailboxes.",
    (MARIA, JOHN),
    6,
    ConverseConfig(turns_min=4, turns_max=8, max_turn_words=60, min_facts_used=1),
)
M, J = MARIA.persona_id, JOHN.persona_id
GOOD = [
    (M, "Evening, John! Is that engine noise from your garage again?"),
    (J, "Guilty. I'm restoring a vintage motorcycle, a 1972 model I found at an auction."),
    (M, "Sounds fun. I work nights as a nurse, so I sleep through most of it anyway."),
    (J, "Night shifts at the hospital must be rough. Rusty, my beagle, barks at every siren."),
    (M, "He keeps watch for me then. The tomatoes in my backyard garden are ripe, want some?"),
    (J, "I would love some. Thanks, and have a quiet shift tonight."),
]


def judge(name: str, turns: list[tuple[str, str]]) -> list[str]:
    return RULES[name](Draft(tuple(turns)), DIALOGUE)


def with_turn(index: int, text: str, speaker: str | None = None) -> list[tuple[str, str]]:
    turns = list(GOOD)
    turns[index] = (speaker or turns[index][0], text)
    return turns


def test_clean_conversation_passes_every_expert() -> None:
    problems = {name: judge(name, GOOD) for name in RULES}
    assert problems == {name: [] for name in RULES}


CASES = [
    ("turn_structure", GOOD[:3], "has 3 turns"),
    (
        "turn_structure",
        [*GOOD[:2], (J, "Also, I forgot to say hello."), *GOOD[2:5]],
        "twice in a row",
    ),
    ("turn_structure", with_turn(2, "   "), "is empty"),
    ("turn_structure", with_turn(2, "word " * 70 + "end."), "runs on"),
    ("turn_structure", with_turn(2, "Maria: I work nights as a nurse."), "speaker label"),
    ("turn_structure", with_turn(3, "Sure thing. John: my beagle barks a lot."), "speaker label"),
    ("turn_structure", with_turn(3, "User 2: my beagle barks a lot."), "speaker label"),
    ("placeholders", with_turn(0, "Hi [name], how are you?"), "unfilled slot"),
    ("placeholders", with_turn(0, "Hello [user 2's name]!"), "unfilled slot"),
    ("placeholders", with_turn(1, "Nice to meet you, User 1."), "unfilled slot"),
    ("placeholders", with_turn(1, "I live in {city} with my dog."), "unfilled slot"),
    ("placeholders", with_turn(1, "I work at (company) downtown."), "unfilled slot"),
    ("repetition", with_turn(4, GOOD[2][1]), "repeats turn 3"),
    ("repetition", with_turn(4, "I am so so so so tired tonight."), "over and over"),
    (
        "repetition",
        with_turn(4, "The tomatoes are ripe. The tomatoes are ripe."),
        "repeats a sentence",
    ),
    (
        "language",
        with_turn(2, "Hola, trabajo de noche como enfermera en el hospital."),
        "not in English",
    ),
    ("language", with_turn(2, "我在医院上夜班，所以我白天睡觉。"), "not in English"),
    (
        "language",
        with_turn(2, "Je suis infirmière et je travaille la nuit dans un hôpital."),
        "not in English",
    ),
    ("language", with_turn(2, "No sé si voy a poder ir a la fiesta."), "not in English"),
    ("language", with_turn(2, "Ma fille commence l'école lundi prochain."), "not in English"),
    ("language", with_turn(2, "¿Qué tal, John?"), "not in English"),
    (
        "language",
        with_turn(2, "Night shifts again for me. Bueno, tengo que irme, nos vemos pronto."),
        "not in English",
    ),
    (
        "leakage",
        with_turn(2, "Maria works night shifts as a nurse at a county hospital."),
        "verbatim",
    ),
    (
        "leakage",
        with_turn(
            2,
            "I work nights as a nurse at the hospital, grow tomatoes and peppers in my "
            "garden, and my two sons play soccer.",
        ),
        "several facts",
    ),
    ("leakage", with_turn(2, "Name: Maria, Job: nurse, Hobby: gardening."), "list or profile"),
    (
        "leakage",
        with_turn(2, "Sure. Name: Maria Lopez. Age: 41. Job: nurse."),
        "list or profile",
    ),
    ("leakage", with_turn(2, "As fact A2 says, I like my garden."), "fact ids"),
    (
        "leakage",
        with_turn(2, "I'm 41-year-old nurse from Ohio. Nice evening."),
        "recites the profile",
    ),
    ("leakage", with_turn(2, "Maria claims one of John's facts. Nice evening."), "instructions"),
    (
        "leakage",
        with_turn(2, "Things Maria can mention: I work nights."),
        "repeats the instructions",
    ),
    (
        "leakage",
        with_turn(2, "Maria reveals 0 of their facts (need 1)."),
        "repeats the instructions",
    ),
    ("leakage", with_turn(2, "John said: 'engine noise again?'"), "repeats the instructions"),
    ("length", [(M, "Hi."), (J, "Hello."), (M, "Nice day."), (J, "Yes.")], "too short"),
    ("length", with_turn(5, "I would love some and then we could"), "cut off"),
    ("length", with_turn(2, "Okay"), "single word"),
    ("length", with_turn(5, "I would love some, and then we could go to the,"), "cut off"),
    ("safety", with_turn(1, "That damn bike is a piece of shit, honestly."), "abusive"),
    ("safety", with_turn(1, "Call me at 614-555-0199 if you need anything."), "phone"),
    ("safety", with_turn(1, "Email me at john.smith@example.com about it."), "email"),
    ("safety", with_turn(1, "I live at 42 Maple Street, right next door."), "street address"),
    ("safety", with_turn(1, "My social is 123-45-6789, don't tell."), "social security"),
    ("safety", with_turn(1, "Use my card 4111 1111 1111 1111 for the order."), "card number"),
    ("safety", with_turn(1, "Screw you, John, nobody asked."), "abusive"),
    ("safety", with_turn(1, "You're an idiot if you think that bike runs."), "abusive"),
    ("safety", with_turn(1, "Touch my bike again and I'll hurt you."), "abusive"),
    (
        "speaker_identity",
        with_turn(1, "Hi there, I'm Maria and I fix motorcycles."),
        "introduces themself",
    ),
    ("speaker_identity", with_turn(1, "Hello John, nice evening for it."), "addresses themself"),
    (
        "speaker_identity",
        with_turn(1, "I just got home from my night shift at the county hospital as a nurse."),
        "claims one of Maria's facts",
    ),
    (
        "fact_use",
        [
            (pid, "Nice evening, isn't it? The air is lovely.") if pid == M else (pid, t)
            for pid, t in GOOD
        ],
        "Maria reveals 0",
    ),
]


@pytest.mark.parametrize(("expert", "turns", "expected"), CASES)
def test_expert_flags_its_failure(expert: str, turns: list[tuple[str, str]], expected: str) -> None:
    problems = judge(expert, turns)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "text",
    [
        "I moved here in 2009 and paid $1,150 a month back then.",  # numbers, not PII
        "That storm was a killer, the power was out until 10 pm.",
        "Shut up, really? You got the job? That is amazing!",  # friendly, not abuse
        "The bus comes at 7:45, route 12, stop 3.",
        "You work nights at the hospital? That must be hard.",  # partner's fact as a question
        "My sister is a nurse too, she says the night shifts never get easier.",
        "Ha, no placeholders here: just a normal sentence (really).",
        "The new café on Main has great espresso, by the way.",
        "We ate at La Casa de Pepe in El Paso, the tacos al pastor were great.",
        "No, I have not been to Paris, but my cousin says it is lovely.",
        "See you at the block party on Saturday, then!",
    ],
)
def test_natural_turns_raise_no_false_alarm(text: str) -> None:
    turns = with_turn(3, text)
    flagged = {name: judge(name, turns) for name in RULES if name != "fact_use"}
    assert all(not p for p in flagged.values()), flagged


def test_used_fact_ids_are_detected_per_speaker() -> None:
    used = used_fact_ids(Draft(tuple(GOOD)), DIALOGUE)
    assert set(used) == {"fct_a1", "fct_a2", "fct_b2", "fct_b3"}


def test_partner_fact_claimed_as_own_is_flagged_not_counted() -> None:
    turns = [(M, "I restore vintage motorcycles in my garage."), *GOOD[1:]]
    used = used_fact_ids(Draft(tuple(turns)), DIALOGUE)
    assert "fct_a1" in used and all(f in {"fct_a1", "fct_a2", "fct_b2", "fct_b3"} for f in used)
    problems = RULES["speaker_identity"](Draft(tuple(turns)), DIALOGUE)
    assert any("claims one of John's facts" in p for p in problems)


def test_rule_experts_score_and_feedback_name_the_turn() -> None:
    turns = with_turn(0, "Hi [name]!")
    verdicts = [
        asyncio.run(e.judge(Draft(tuple(turns)), DIALOGUE, None, seed=0))  # type: ignore[arg-type]
        for e in rule_experts()
    ]
    failed = [v for v in verdicts if not v.passed]
    assert [v.expert for v in failed] == ["placeholders"]
    assert failed[0].score is not None and failed[0].score < 5
    assert "turn 1 (Maria)" in failed[0].feedback


def test_faithfulness_contradiction_fails_and_names_the_fact() -> None:
    draft = Draft(tuple(GOOD))
    verdict = faithfulness_verdict(["A1"], ["B3"], "John says he has no pets.", draft, DIALOGUE)
    assert not verdict.passed and verdict.score == 1.0
    assert "Rusty" in verdict.feedback
    assert faithfulness_verdict(["A1"], [], "", draft, DIALOGUE).passed


@pytest.mark.parametrize(
    ("entailed", "contradicted", "used", "unused_entailed", "unused_contradicted", "score"),
    [
        # GOOD uses fct_a1, fct_a2, fct_b2, fct_b3 (lexically); a used fact in neither list
        # is neutral, and neutral lowers the score without failing
        (["A1", "A2", "B2", "B3"], [], ["entailed"] * 4, [], [], 5.0),
        (["A1", "B2"], [], ["entailed", "neutral", "entailed", "neutral"], [], [], 4.0),
        ([], [], ["neutral"] * 4, [], [], 3.0),
        # the judge also found a fact the lexical detector missed
        (["A1", "A2", "B2", "B3", "B1"], [], ["entailed"] * 4, ["fct_b1"], [], 5.0),
        # passive constraint: a contradicted fact the conversation did not use still fails
        (["A1", "A2", "B2", "B3"], ["A3"], ["entailed"] * 4, [], ["fct_a3"], 1.0),
        (["A1", "A2", "B2"], ["B3"], ["entailed"] * 3 + ["contradicted"], [], [], 1.0),
    ],
)
def test_faithfulness_labels_every_used_fact(
    entailed, contradicted, used, unused_entailed, unused_contradicted, score
) -> None:
    v = faithfulness_verdict(entailed, contradicted, "", Draft(tuple(GOOD)), DIALOGUE)
    assert v.details == {
        "used": dict(zip(["fct_a1", "fct_a2", "fct_b2", "fct_b3"], used, strict=True)),
        "unused_entailed": unused_entailed,
        "unused_contradicted": unused_contradicted,
    }
    assert v.score == score and v.passed == (not contradicted)


def test_faithfulness_without_used_facts_scores_four_with_empty_labels() -> None:
    small_talk = Draft(((M, "Evening! Lovely weather."), (J, "It is, enjoy the walk.")))
    v = faithfulness_verdict([], [], "", small_talk, DIALOGUE)
    assert (v.score, v.passed) == (4.0, True)
    assert v.details == {"used": {}, "unused_entailed": [], "unused_contradicted": []}


@pytest.mark.parametrize(
    ("entailed", "contradicted", "message"),
    [
        (["A1", "C1"], [], r"unknown fact ids \['C1'\].*A1, A2, A3, B1, B2, B3"),
        ([], ["A4"], r"unknown fact ids \['A4'\]"),
        (["A1", "B2"], ["B2"], r"fact ids \['B2'\] are both entailed and contradicted"),
    ],
)
def test_fact_ids_are_checked_against_the_speakers_facts(entailed, contradicted, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_fact_ids(entailed, contradicted, DIALOGUE)
    check_fact_ids(["A1", "B3"], ["A2"], DIALOGUE)  # known and consistent: no error


@pytest.mark.parametrize(
    ("acceptance", "scores", "accepted"),
    [
        ("all_pass", [5, 5, 2, 5], False),
        ("weighted", [5, 5, 2, 5], True),  # mean 4.25 >= 3
        ("weighted", [2, 2, 3, 2], False),
    ],
)
def test_mixture_acceptance_rule_is_configurable(
    acceptance: str, scores: list[int], accepted: bool
) -> None:
    cfg = ConverseConfig(acceptance=acceptance, accept_threshold=3.0)  # type: ignore[arg-type]
    names = ["faithfulness", "naturalness", "coherence", "engagement"]
    verdicts = [Verdict("placeholders", 5.0, True, "ok")] + [
        Verdict(n, float(s), s >= 3, "") for n, s in zip(names, scores, strict=True)
    ]
    assert mixture_accepts(verdicts, cfg) is accepted


def test_weighted_acceptance_still_requires_every_gate() -> None:
    cfg = ConverseConfig(acceptance="weighted")
    verdicts = [Verdict("placeholders", 3.0, False, "slot"), Verdict("coherence", 5.0, True, "")]
    assert not mixture_accepts(verdicts, cfg)


def test_partner_fact_of_the_same_template_is_flagged_by_its_distinct_words() -> None:
    anna = Speaker("per_a", "Anna Berg", "Anna", "", (
        Fact("a1", "finance", "I pay $44 a month for my phone plan with Visible."),
    ), ())  # fmt: skip
    ben = Speaker("per_b", "Ben Hall", "Ben", "", (
        Fact("b1", "finance", "I pay $44 a month for my phone plan with Verizon."),
    ), ())  # fmt: skip
    d = Dialogue("conv_t", "chat", (anna, ben), 4, DIALOGUE.cfg)
    said = "I pay $44 a month for my phone plan with {}."
    for carrier, flagged in (("Visible", True), ("Verizon", False)):  # Anna's vs his own
        turns = ((anna.persona_id, "Hi Ben, how are you?"), (ben.persona_id, said.format(carrier)))
        problems = RULES["speaker_identity"](Draft(turns), d)
        assert bool(problems) == flagged, (carrier, problems)


@pytest.mark.parametrize(
    ("language", "text", "flagged"),
    [
        ("es", "Trabajo de noche en el hospital y duermo de día.", False),
        ("es", "I work nights at the hospital and sleep all day.", True),
        ("fr", "Je travaille la nuit à l'hôpital.", False),
        (
            "ja",
            "I work nights at the hospital and sleep all day.",
            False,
        ),  # no word list: unchecked
    ],
)
def test_language_follows_the_expected_language(language: str, text: str, flagged: bool) -> None:
    d = Dialogue("conv_l", "chat", (MARIA, JOHN), 6, ConverseConfig(language=language))
    problems = RULES["language"](Draft(tuple(with_turn(2, text))[:3]), d)
    assert any("turn 3" in p for p in problems) == flagged, problems


def test_a_fact_is_revealed_by_its_own_name_but_not_by_a_shared_year() -> None:
    facts = (
        Fact("d1", "pets", "I have a golden retriever named Biscuit."),
        Fact("d2", "work", "I started at the bakery in 2021."),
        Fact("d3", "history", "I ran my first race in 2021."),
    )
    assert facts_in_text("Biscuit keeps digging under the fence.", facts, set()) == ["d1"]
    assert facts_in_text("That was back in 2021, I think.", facts, set()) == []
    assert facts_in_text("Biscuit keeps digging.", facts, set(), by_name=False) == []


def test_partner_fact_recombined_from_own_words_is_still_the_partners() -> None:
    ann = Speaker("per_a", "Ann Lee", "Ann", "", (
        Fact("a1", "hobbies", "I water the tomatoes on my Greenfield porch every Wednesday."),
        Fact("a2", "family", "My daughter plays bowling at Cedar Hollow Middle School."),
        Fact("a3", "habits", "I stop at Meijer for coffee every Tuesday morning."),
    ), ())  # fmt: skip
    gus = Speaker("per_g", "Gus Roe", "Gus", "", (
        Fact("g1", "hobbies", "I water the tomatoes on my Cedar Hollow porch every Tuesday."),
    ), ())  # fmt: skip
    d = Dialogue("conv_r", "chat", (ann, gus), 4, DIALOGUE.cfg)
    said = {"partner": gus.facts[0].statement, "own": ann.facts[0].statement}
    for whose, text in said.items():
        turns = ((ann.persona_id, text), (gus.persona_id, "Nice, how are the tomatoes?"))
        assert bool(RULES["speaker_identity"](Draft(turns), d)) == (whose == "partner")
