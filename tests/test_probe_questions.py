"""Probe questions: the grammar either asks a well-formed question or gives None (cloze)."""

from __future__ import annotations

import itertools
import re

import pytest

from personafoundry.fact_text import answer_span
from personafoundry.probe_questions import _checked, natural_question


def ask(statement: str) -> str | None:
    return natural_question(statement, answer_span(statement))


@pytest.mark.parametrize(
    ("statement", "question"),
    [
        # a release's 0.5B fact read "How many has my friend Ana been a loyal friend ...?"
        ("My friend Ana has been a loyal friend of mine 5 years.",
         "How many years has my friend Ana been a loyal friend of mine?"),
        ("My friend Ana has been a loyal friend of mine for over 5 years.",
         "How long has my friend Ana been a loyal friend of mine?"),
        ("I walk 5 miles every morning.", "How many miles do I walk every morning?"),
        ("I work 40 hours a week.", "How many hours a week do I work?"),
        ("I read 2 books a month.", "How many books a month do I read?"),
        ("I drink 3 cups of coffee every day.", "How many cups of coffee do I drink every day?"),
        ("I go to the gym 4 times a week.", "How many times a week do I go to the gym?"),
        ("I have been to Paris 3 times.", "How many times have I been to Paris?"),
        ("I have a garden with 20 tomato plants.",
         "How many tomato plants do I have a garden with?"),
        ("My sister Iris lives in Lakeview with 3 cats.",
         "How many cats does my sister Iris live in Lakeview with?"),
        ("I have 2 dogs and 1 cat.", "How many dogs do I have?"),
        ("I see my doctor every 6 months.", "How often do I see my doctor?"),
        ("I got divorced 3 years ago.", "How long ago did I get divorced?"),
        ("I am 5 feet tall.", "How tall am I?"),
        ("I'm 34.", "How old am I?"),
        ("I will turn 40 next year.", "How old will I turn next year?"),
        ("My son Ana is 5 years old and loves soccer.", "How old is my son Ana?"),
        ("I usually wake up at 6 am.", "At what time do I usually wake up?"),
        ("I ran my first marathon at age 30.", "At what age did I run my first marathon?"),
        ("I finished a marathon in 4 hours.", "In how many hours did I finish a marathon?"),
        ("I can lift 200 pounds.", "How many pounds can I lift?"),
        ("I need to lose 10 pounds.", "How many pounds do I need to lose?"),
        ("I am saving $300 a month for a trip to Hawaii.",
         "How much am I saving a month for a trip to Hawaii?"),
        ("I moved here in 2009 and paid $1,150 a month back then.",
         "In what year did I move here?"),
        ("I can speak French fluently.", "What can I speak?"),
        ("I am learning Spanish on Duolingo.", "What am I learning on Duolingo?"),
        ("I love to cook Italian food.", "What do I love to cook?"),
        ("I used to smoke.", "What did I use to do?"),
        ("I smoked for 10 years.", "How long did I smoke?"),
        ("I served in the Army for 10 years.", "How long did I serve in the Army?"),
        ("I visited Japan in 2019.", "In what year did I visit Japan?"),
        ("I feed my cat twice a day.", "How often do I feed my cat?"),
        ("I once lived in Paris for 2 years.", "How long did I once live in Paris?"),
        ("My parrot is called Kiwi.", "What is my parrot's name?"),
        ("I named my dog Max.", "What is my dog's name?"),
        ("My best friend is Sarah.", "What is my best friend's name?"),
        ("My favorite season is fall.", "What is my favorite season?"),
        ("I am very good at math.", "What am I very good at?"),
        ("I am interested in astronomy.", "What am I interested in?"),
        ("I like to read books in my free time.", "When do I like to read books?"),
        ("I play pickleball every Saturday morning.", "When do I play pickleball?"),
        ("I water the tomatoes on my Norwood porch every Monday.",
         "Where do I water the tomatoes every Monday?"),
    ],
)  # fmt: skip
def test_bad_shapes_become_good_questions(statement: str, question: str) -> None:
    assert ask(statement) == question


@pytest.mark.parametrize(
    "statement",
    [
        "My favorite hobby is reading books for 3 hours every day.",  # "How long is my ... hobby"
        "I have three cats named Luna, Milo and Bella.",  # "What is my cats's name?"
        "I have 2 children, Ana and Luis.",  # "How many do I have children, Ana and Luis?"
        "My car is a 2015 Honda Civic.",  # "In what year is my car Honda Civic?"
        "I broke my arm when I was 10.",  # "What was did I break?"
        "I broke my arm when I was 10 years old.",  # "How old did I break my arm when I was?"
        "My age is 34.",  # "How many is my age?"
        "I am a mother of 3.",  # "How many am I a mother?"
        "I eat breakfast at 7.",  # "How many do I eat breakfast?"
        "I am 5 foot 6.",  # "How many foot am I 6?"
        "I have a 5-year-old son.",  # "How many do I have -year-old son?"
        "I take metformin for type 2 diabetes.",  # "What type do I take metformin?"
        "I lived in Town1 until 2001.",  # "What town did I live until 2001?"
        "I am a nurse and I have been working for 12 years.",  # "... and I have been working?"
        "I am single and happy about it.",  # "What am I about it?"
        "I spend most of my time reading.",  # "What do I spend most of?"
        "I am single.",  # "What am I?"
        "My cat is gray.",  # "What is my cat?"
        "I think the owner is Ann.",  # "What do I think the owner is?"
        "I don't bake sourdough bread.",  # "What do I don't?"
        "I no longer have a cat.",  # "What do I no?"
        "I coached Little League (2012-2018).",  # "In what year did I coach -2018)?"
        "I grow basil; I also grow mint on my balcony.",  # "Where do I grow basil; I also ..."
        "My name is Maria Lopez. I am 34 years old and I live in Austin, Texas.",
    ],
)
def test_shapes_the_grammar_cannot_invert_fall_back_to_the_cloze(statement: str) -> None:
    assert ask(statement) is None


@pytest.mark.parametrize(
    "question",
    [
        "How many has my friend Ana been a loyal friend of mine?",
        "How many do I walk every morning?",
        "How many foot am I 6?",
        "What was did I break?",
        "What am I?",
        "How old did I break my arm when I was?",
        "What do I think the owner is?",
        "What am I divorced and I share a small house with my?",
        "In what year did I move to Austin . I bought a house there?",
        "Where do I pay ____ a month?",
        "How many do I have -year-old son?",
        "What do I spend most of?",
        "How much do I pay do I pay for rent?",
        "What do I have and do I have and do I have and do I have and do I want and do I need?",
    ],
)
def test_malformed_questions_are_refused(question: str) -> None:
    assert _checked(question, "Pepper") is None


GOOD = [  # beyond the basic shapes of tests/test_probes.py, which must not change either
    ("I have been allergic to pollen since 2017.", "Since when have I been allergic to pollen?"),
    ("I pay $71 a month for my phone plan with Visible.",
     "How much do I pay a month for my phone plan with Visible?"),
    ("I lived in Silver Lake from 2017 to 2021.",
     "From what year did I live in Silver Lake to 2021?"),
    ("I ran the Oak Ridge Half Marathon in April 2022.",
     "In what year did I run the Oak Ridge Half Marathon?"),
    ("I stop at Meijer for coffee every Thursday morning before eight.",
     "Where do I stop for coffee every Thursday morning before eight?"),
    ("I play the violin with a group called the Ashford Ramblers on Thursday nights.",
     "What is the name of the group I play the violin with?"),
    ("My friend Nia and I met at Maplewood Community College in 2022.",
     "In what year did my friend Nia and I meet at Maplewood Community College?"),
    ("I keep $368 in a Chipotle savings account.",
     "How much do I keep in a Chipotle savings account?"),
    ("Our cat Biscuit sleeps at the end of my bed.", "What is my cat's name?"),
    ("I am in third grade at Marlow Elementary.", "Where am I in third grade?"),
    ("My favorite team is the Oak Ridge Comets in the minor leagues.",
     "What is my favorite team in the minor leagues?"),
    ("I have worked at Walmart for 5 years.", "How long have I worked at Walmart?"),
    ("I speak 3 languages.", "How many languages do I speak?"),
    ("My house has 4 bedrooms.", "How many bedrooms does my house have?"),
    ("I take 2 pills every day.", "How many pills do I take every day?"),
    ("I spend $200 a month on groceries.", "How much do I spend a month on groceries?"),
    ("My husband and I have been married for 10 years.",
     "How long have my husband and I been married?"),
    ("My boyfriend and I moved in together in 2021.",
     "In what year did my boyfriend and I move in together?"),
    ("I go to church every Sunday.", "When do I go to church?"),
    ("I was born in Ohio.", "Where was I born?"),
    ("I hope to become a doctor.", "What do I hope to become?"),
    ("I am a big fan of the Dallas Cowboys.", "What am I a big fan of?"),
    ("My favorite dish is the pierogi at Bea's Kitchen.", None),  # no clean inversion
]  # fmt: skip


@pytest.mark.parametrize(("statement", "question"), GOOD)
def test_good_questions_come_out_unchanged(statement: str, question: str | None) -> None:
    assert ask(statement) == question


FACTS = [statement for statement, _ in GOOD] + [
    "I have been working as a nurse for 12 years.", "I was born in 1985 in Ohio.",
    "I have a son named Ana.", "I live in a house with 3 bedrooms.", "I weigh 150 pounds.",
    "My sister is 3 years younger than me.", "I am the oldest of 4 children.",
    "I have 12 years of experience as a nurse.", "I collect stamps from 50 countries.",
    "I go to bed at 10 pm every night.", "I grew up in Ohio with my 3 brothers.",
    "I spent 12 years at St. David's Medical Center.", "I have a younger sister who is 25.",
    "My kids are 5 and 8 years old.", "I walk Max and Ruby at 6 a.m. every day.",
    "I live at 42 Maple Street, right next door.", "My son named Ana is 5.",
    "I have been to 15 countries.", "I bought my house in 2015 for $250,000.",
    "I have two beagles named Max and Ruby. I work as a nurse. I live in Arizona.",
    "I am a 38 year old woman.", "My grandma Luz visits us from Elm Park every November.",
]  # fmt: skip
AUX = r"(?:do|does|did|am|is|are|was|were|have|has|had|can|will|would)"


def test_every_question_is_well_formed_or_none() -> None:
    asked = 0
    for statement in FACTS:
        span = answer_span(statement)
        question = natural_question(statement, span)
        if question is None:
            continue
        asked += 1
        words = question.lower().rstrip("?").split()
        assert question.endswith("?") and question.count("?") == 1, question
        assert span.lower() not in question.lower(), question
        assert not re.match(rf"How many {AUX}\b", question), question  # counts a noun
        assert re.match(rf"[A-Z][\w ]*? {AUX} (I|my|the name of)\b", question), question
        assert all(a != b for a, b in itertools.pairwise(words)), question
        assert words.count("i") <= 1 and words[-1] not in {"a", "the", "my", "and"}, question
        assert 4 <= len(words) <= 20, question
        assert not re.search(r"[;()_]|[a-z]{3}\. |\s-", question), question  # one clean sentence
    assert asked >= 0.75 * len(FACTS)  # most facts are asked, not all refused
