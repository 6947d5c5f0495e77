"""Deterministic persona critics: each consistency rule flags what it should and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from personafoundry.persona_critics import (
    Fact,
    PersonaCandidate,
    PersonaContext,
    check_demographics,
    check_ledger,
    classify_statement,
    persona_experts,
    seed_conflicts,
    tidy_candidate,
    validity_years,
)
from personafoundry.persona_prompts import load_categories, render_profile

ADULT = {
    "name": "Maria Lopez", "age": 34, "sex": "Female", "state": "Texas",
    "occupation": "Registered Nurses", "employment_status": "Employed",
    "marital_status": "Now married, except separated", "household_income": 85_000,
}  # fmt: skip
CHILD = {
    "name": "Leo Park", "age": 9, "sex": "Male", "state": "Ohio", "occupation": None,
    "employment_status": None, "marital_status": None, "household_income": None,
}  # fmt: skip
RETIREE = {
    **ADULT, "name": "Walt Brenner", "age": 71, "sex": "Male", "occupation": None,
    "employment_status": "Retired", "marital_status": "Widowed", "household_income": 40_000,
}  # fmt: skip
NARRATIVES = {
    "Maria Lopez": "My name is Maria Lopez. I live in Austin, Texas, and I work as a nurse at "
    "a children's hospital. My husband Carlos and I like long drives on weekends with Luna.",
    "Leo Park": "My name is Leo Park. I am in fourth grade at Maple Elementary in Columbus. I "
    "love building Lego spaceships with my big sister Mina after school every day.",
    "Walt Brenner": "My name is Walt Brenner. I spent forty years fixing diesel engines before "
    "I retired. Now I tend tomatoes in my backyard in Waco and visit my grandkids on Sundays.",
}
GOOD_FACTS = (
    "My brother Omar runs a bakery in Tucson.",
    "My favorite cereal is Honey Nut Cheerios.",
    "I have volunteered at the Waco food bank since 2019.",
    "My favorite breakfast spot is Kerbey Lane Cafe.",
)


def judge(profile: dict[str, Any], *statements: str, narrative: str | None = None,
          seeds: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:  # fmt: skip
    """(ledger problems, demographics problems) for a persona built from `statements`."""
    facts = [Fact(classify_statement(s), s, seed=True) for s in seeds]
    facts += [Fact("history", s) for s in (*statements, *GOOD_FACTS)][: 8 - len(facts)]
    candidate = PersonaCandidate(narrative or NARRATIVES[profile["name"]], tuple(facts))
    context = PersonaContext(profile, 4, 8, 2023, render_profile(profile), seeds)
    return check_ledger(candidate, context), check_demographics(candidate, context)


@pytest.mark.parametrize("profile", [ADULT, CHILD, RETIREE])
def test_consistent_personas_pass_both_gates(profile):
    assert judge(profile) == ([], [])


@pytest.mark.parametrize(
    ("profile", "statement", "expected"),
    [
        (ADULT, "I am 52 years old.", "gives age 52, but I am 34"),
        (ADULT, "I'm a 29-year-old night owl.", "gives age 29"),
        (ADULT, "I was born in 1970 in San Antonio.", "gives age 53"),
        (ADULT, "I started my nursing career in 1985.", "before I was born (1989)"),
        (ADULT, "I currently live in Columbus, Ohio.", "says I live in Ohio, but I live in Texas"),
        (ADULT, "I am retired from nursing.", "says I do not work"),
        (ADULT, "I am single and happy about it.", "says I am not married"),
        (ADULT, "I am a proud father of two.", "does not fit my sex (Female)"),
        (ADULT, "We make $400,000 a year together.", "does not fit my household income"),
        (ADULT, "My name is Jessica and I love Austin.", "calls me Jessica"),
        (CHILD, "I work at my uncle's car wash on Saturdays.", "says I have a job"),
        (CHILD, "My wife Sara bakes bread every Sunday.", "gives me a spouse"),
        (CHILD, "I drive my dad's Ford pickup to school.", "too young for that (drives)"),
        (CHILD, "My daughter Emma is 3 years old.", "too young for that (has children)"),
        # seen on the embedded model (a 15-year-old's accepted ledger, session 5)
        (CHILD, "I have a job as a data analyst at a tech company.", "says I have a job"),
        (CHILD, "My salary is $25,000 per year.", "says I have a job"),
        (CHILD, "I have one child, who is my sister Ana.", "too young for that (has children)"),
        (RETIREE, "My boss at the Ford plant calls me daily.", "says I have a job"),
        (RETIREE, "My wife Linda cooks pot roast on Sundays.", "gives me a spouse"),
    ],
)
def test_demographic_conflicts_are_named(profile, statement, expected):
    _, demographics = judge(profile, statement)
    assert any(expected in p for p in demographics), demographics


@pytest.mark.parametrize(
    ("profile", "statement"),
    [
        (ADULT, "I lived in Denver, Colorado from 2012 to 2015."),  # past tense, not now
        (ADULT, "My sister Ana lives in Tucson, Arizona."),  # someone else's state
        (ADULT, "My daughter Sofia is 6 years old."),  # another person's age
        (ADULT, "I am 5 feet 4 inches tall."),  # a number that is not an age
        (ADULT, "I spent 12 years at St. David's Medical Center."),
        (ADULT, "My late mother taught me to sew in 1998."),
        (CHILD, "My mom works as a dentist in Dayton."),  # a parent's job
        (CHILD, "I have a pet hamster named Biscuit."),  # "I have a ..." that is no child
        (ADULT, "I have two kids, Mateo and Lucia."),  # an adult may have children
        (RETIREE, "My late wife Ruth loved Patsy Cline records."),  # widowed: a late spouse
        (RETIREE, "I worked as a diesel mechanic at Ford for 40 years."),  # a past job
    ],
)
def test_statements_about_others_or_the_past_are_not_flagged(profile, statement):
    assert judge(profile, statement)[1] == []


def test_outdated_fact_may_name_another_state():
    profile = ADULT
    facts = (Fact("location", "I live in Denver, Colorado.", 2012, 2015),) + tuple(
        Fact("history", s) for s in GOOD_FACTS
    )
    context = PersonaContext(profile, 4, 8, 2023, "")
    candidate = PersonaCandidate(NARRATIVES["Maria Lopez"], facts)
    assert check_demographics(candidate, context) == []


def test_occupation_must_be_mentioned():
    narrative = "My name is Maria Lopez. I live in Austin, Texas with my husband Carlos and " \
        "our dog Luna, and I spend my weekends painting by the lake near our home."  # fmt: skip
    _, demographics = judge(ADULT, narrative=narrative)
    assert demographics == ["never says that I work as Registered Nurses; mention it"]


def test_narrative_must_use_the_sampled_name():
    narrative = NARRATIVES["Maria Lopez"].replace("Maria Lopez", "Sofia Reyes")
    _, demographics = judge(ADULT, narrative=narrative)
    assert any("must use my name, Maria Lopez" in p for p in demographics)
    assert any("calls me Sofia" in p for p in demographics)


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (("I like music.",), "is generic"),
        (("I am a nice person.",), "is generic"),
        (("Me.",), "one short sentence"),
        (("I moved to Austin in 2015. I bought a house there.",), "more than one sentence"),
        (("I grow basil; I also grow mint on my balcony.",), "more than one sentence"),
        (("Carlos fixes bikes at Mellow Johnny's downtown.",), "first person"),
        (("My brother Omar runs a bakery in Tucson, Arizona.",), "say the same thing"),
        (("My daughter Kelly is a vet in Bozeman.",), "copies the example person"),
        (("My father is Maria Lopez.",), "uses my own name for someone else"),  # embedded
    ],
)
def test_ledger_problems_are_named(statements, expected):
    ledger, _ = judge(ADULT, *statements)
    assert any(expected in p for p in ledger), ledger


def test_ledger_counts_checks_periods_and_specificity():
    vague = ("I enjoy cooking at home.", "I have a cat at home.", "I walk every morning.",
             "I read before bed most days.")  # fmt: skip
    context = PersonaContext(ADULT, 4, 6, 2023, "")
    too_few = PersonaCandidate(NARRATIVES["Maria Lopez"], (Fact("habits", GOOD_FACTS[0]),))
    assert "write 4-6 facts, not 1" in check_ledger(too_few, context)
    generic = PersonaCandidate(NARRATIVES["Maria Lopez"], tuple(Fact("habits", s) for s in vague))
    assert any("too few facts are concrete" in p for p in check_ledger(generic, context))
    periods = tuple(Fact("history", s) for s in GOOD_FACTS) + (
        Fact("work", "I worked at H-E-B in Austin.", 2015, 2010),
        Fact("location", "I lived in El Paso as a baby.", 1980, 1985),
    )
    problems = check_ledger(PersonaCandidate(NARRATIVES["Maria Lopez"], periods), context)
    assert any("valid_to 2010 is before valid_from 2015" in p for p in problems)
    assert any("before the birth year 1989" in p for p in problems)


def test_seed_facts_are_exempt_from_style_rules_but_not_from_demographics():
    seeds = ("A retired chemistry teacher who restores clocks",)
    ledger, _ = judge(RETIREE, seeds=seeds)
    assert ledger == []  # not first person, but verbatim seed text is accepted as is
    context = PersonaContext(ADULT, 4, 8, 2023, "", ("I am 70 years old.", "I love dogs."))
    assert seed_conflicts(context) == ["'I am 70 years old.' gives age 70, but I am 34"]


@pytest.mark.parametrize(
    ("sentence", "category"),
    [
        ("I have two dogs.", "family"),
        ("I work as a nurse.", "work"),
        ("I am allergic to peanuts.", "health"),
        ("I play the guitar in a band.", "hobbies"),
        ("I am divorced.", "relationships"),
        ("My favorite color is green.", "preferences"),
        ("Zzz.", "history"),  # no keyword: the fallback
    ],
)
def test_seed_sentences_are_classified_into_the_fixed_categories(sentence, category):
    assert classify_statement(sentence) == category
    assert category in load_categories()[0]


def test_experts_run_gates_before_judges():
    names = [e.name for e in persona_experts()]
    assert names == ["ledger", "demographics", "coherence", "realism"]
    assert [e.name for e in persona_experts(judges=False)] == ["ledger", "demographics"]


@pytest.mark.parametrize(
    ("statement", "period"),
    [
        ("I lived in El Paso from 2010 to 2016.", (2010, 2016)),
        ("I worked at Target between 1999 and 2004.", (1999, 2004)),
        ("I coached Little League (2012-2018).", (2012, 2018)),
        ("I have driven for Sysco since 2004.", (2004, None)),
        ("I rented on Elm Street until 2020.", (None, 2020)),
        ("I married Carlos in 2017.", (None, None)),  # an event, not a period
    ],
)
def test_validity_periods_are_read_from_the_statement(statement, period):
    assert validity_years(statement) == period


def test_narrative_copying_the_prompt_example_is_flagged():
    narrative = NARRATIVES["Maria Lopez"] + " On my days off I fish on the Yellowstone River."
    ledger, _ = judge(ADULT, narrative=narrative)
    assert any("narrative copies the example person" in p for p in ledger)


def test_third_person_narrative_is_flagged():
    narrative = ("Maria Lopez is a nurse in Austin, Texas. She has two dogs and she paints "
                 "watercolors of bluebonnets. Her husband Carlos teaches math at a high school.")  # fmt: skip
    ledger, _ = judge(ADULT, narrative=narrative)
    assert any("narrative in the first person" in p for p in ledger)


def test_opener_shaped_like_the_example_is_not_a_copy():
    narrative = NARRATIVES["Maria Lopez"].replace(
        "My name is Maria Lopez.", "My name is Maria Lopez. I am 58 years old and I live in Texas."
    )
    ledger, _ = judge({**ADULT, "age": 58}, narrative=narrative)
    assert not any("copies" in p for p in ledger), ledger


def test_tidy_leaves_out_bad_facts_while_the_ledger_keeps_its_minimum():
    bad = (
        "Maria Lopez works at the hospital.",  # third person
        "My brother Omar runs a bakery in Tucson.",  # repeats the first good fact
        "I live in Denver, Colorado.",  # contradicts the skeleton (Texas)
        "I drive a 2014 Honda Civic.",  # copies the prompt's example
    )
    seed = "I was a lifeguard in Galveston."
    facts = (Fact("history", seed, seed=True), *(Fact("history", s) for s in (*GOOD_FACTS, *bad)))
    candidate = PersonaCandidate(NARRATIVES["Maria Lopez"], facts)
    context = PersonaContext(ADULT, 4, 8, 2023, render_profile(ADULT), (seed,))
    tidied = tidy_candidate(candidate, context)
    assert [f.statement for f in tidied.facts] == [seed, *GOOD_FACTS]
    assert tidied.dropped == bad and tidied.narrative == candidate.narrative
    assert check_ledger(tidied, context) == [] and check_demographics(tidied, context) == []
    # no room below the minimum: only the first bad fact goes, the gates reject the rest
    tight = PersonaContext(ADULT, 7, 8, 2023, render_profile(ADULT), (seed,))
    kept = tidy_candidate(candidate, tight)
    assert kept.dropped == bad[:1] and len([f for f in kept.facts if not f.seed]) == 7
    assert check_ledger(kept, tight) and check_demographics(kept, tight)
    clean = PersonaCandidate(candidate.narrative, facts[:5])
    assert tidy_candidate(clean, context) is clean


def test_tidy_cuts_narrative_sentences_that_contradict_the_skeleton_but_keeps_the_opener():
    narrative = (
        "My name is Leo Park. I work as a software developer at Google. I am in fourth "
        "grade at Maple Elementary in Columbus. I love Lego spaceships. My sister Mina "
        "plays chess with me after school."
    )
    facts = tuple(Fact("hobbies", s) for s in GOOD_FACTS)
    context = PersonaContext(CHILD, 4, 8, 2023, render_profile(CHILD))
    tidied = tidy_candidate(PersonaCandidate(narrative, facts), context)
    assert tidied.dropped == ("narrative: I work as a software developer at Google.",)
    assert tidied.narrative.startswith("My name is Leo Park. I am in fourth grade")
    assert check_demographics(tidied, context) == []
    # never below MIN_NARRATIVE_SENTENCES: a short narrative goes to the gates as written
    short = "My name is Leo Park. I work as a software developer. I like Lego."
    kept = tidy_candidate(PersonaCandidate(short, facts), context)
    assert kept.narrative == short and check_demographics(kept, context)
