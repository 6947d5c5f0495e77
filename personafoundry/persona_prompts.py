"""Prompt templates and renderings for persona enrichment and its LLM judges.

Templates are TOML files in `seeds/prompts/personas/` with a `version` and text parts
filled by `str.format`; the versions are recorded on every persona row and review and
the rendered text is part of the response-cache key. The fact categories are data too
(`seeds/fact_categories.toml`).

Decisions:
- The profile is shown to the model as a short bullet list of the skeleton's values,
  the same text for the generator and the judges, so a judge checks what the
  generator was told.
- Big Five traits are turned into words (three bands split at 0.35 and 0.65) because a
  0.5B model does nothing useful with "openness 0.71".
- Race/ethnicity is shown (the narrative may use it), and the generator prompt forbids
  deriving hobbies, tastes or personality from race, ethnicity or sex (stereotype guard).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from personafoundry.paths import SEEDS_DIR

if TYPE_CHECKING:
    from personafoundry.persona_critics import PersonaCandidate, PersonaContext

PROMPTS_DIR = SEEDS_DIR / "prompts" / "personas"
CATEGORIES_PATH = SEEDS_DIR / "fact_categories.toml"
TRAIT_WORDS = {  # (low, middle, high) for values < 0.35, 0.35-0.65, > 0.65
    "openness": ("conventional", "moderately curious", "curious and imaginative"),
    "conscientiousness": ("disorganized", "fairly organized", "very organized"),
    "extraversion": ("reserved", "sociable at times", "outgoing"),
    "agreeableness": ("blunt", "friendly enough", "warm and kind"),
    "neuroticism": ("calm", "sometimes anxious", "easily stressed"),
}
JUDGE_PROMPTS = ("judge_coherence", "judge_realism")

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Prompt:
    """A prompt template file: its version and its named text parts."""

    version: str
    parts: dict[str, Any]

    def text(self, part: str, **values: Any) -> str:
        return str(self.parts[part]).format(**values)

    def messages(self, **values: Any) -> Messages:
        """System + user messages from the `system` and `user` parts."""
        return [
            {"role": "system", "content": self.text("system")},
            {"role": "user", "content": self.text("user", **values)},
        ]


@cache
def load_prompt(name: str) -> Prompt:
    """`seeds/prompts/personas/<name>.toml`."""
    data = tomllib.loads((PROMPTS_DIR / f"{name}.toml").read_text("utf-8"))
    return Prompt(str(data.pop("version")), data)


@cache
def load_categories() -> tuple[dict[str, dict[str, Any]], str]:
    """The fixed categories (`{name: {description, keywords}}`, file order) and the fallback."""
    data = tomllib.loads(CATEGORIES_PATH.read_text("utf-8"))
    return data["categories"], data["fallback"]


def prompt_version() -> str:
    """Versions of every persona prompt, joined; recorded on rows and reviews."""
    names = ("generate", *JUDGE_PROMPTS)
    return "+".join(load_prompt(n).version for n in names)


@cache
def example_statements() -> tuple[str, ...]:
    """Sentences the generator prompt shows (example person, quoted sample facts).

    A 0.5B model copies examples verbatim; the ledger critic rejects such copies.
    """
    prompt = load_prompt("generate")
    example = json.loads(prompt.parts["example"])
    # the first two sentences have the opener's shape (name; age and state): not content
    sentences = re.split(r"(?<=[.!?])\s+", example["narrative"])[2:]
    quoted = re.findall(r'"([A-Z][^"{}]*[.!?])"', prompt.parts["user"])
    return (*(f["statement"] for f in example["facts"]), *sentences, *quoted)


def describe_traits(traits: dict[str, float] | None) -> str:
    if not traits:
        return ""
    words = []
    for trait, (low, mid, high) in TRAIT_WORDS.items():
        value = traits.get(trait)
        if value is not None:
            words.append(low if value < 0.35 else high if value > 0.65 else mid)
    return ", ".join(words)


def work_line(row: dict[str, Any]) -> tuple[str, str]:
    """(profile line, narrative hint) for the person's work."""
    occupation, status, age = row.get("occupation"), row.get("employment_status"), row["age"]
    if occupation:
        job = job_title(occupation)
        return job, f"that they work as {_article(job)} {job.lower()}"
    if age < 16 or not status:
        return "none (in school or too young to work)", "their school or daily life"
    if status == "Unemployed":
        return "unemployed, looking for work", "that they are looking for work"
    if status == "Armed Forces":
        return "serves in the Armed Forces", "their military service"
    return f"not working ({status.lower()})", "how they spend their days without a job"


def job_title(occupation: str) -> str:
    """BLS titles are plural ("Registered Nurses"); a simple one reads better singular."""
    if "," in occupation or " and " in occupation or not occupation.endswith("s"):
        return occupation
    if occupation.endswith(("ches", "shes", "sses", "xes")):
        return occupation[:-2]
    return occupation[:-3] + "y" if occupation.endswith("ies") else occupation[:-1]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _race_words(label: str | None) -> str | None:
    if not label:
        return None
    if label.startswith("Not Hispanic: "):  # "(not Hispanic)" was parroted into narratives
        return label.removeprefix("Not Hispanic: ").replace(" alone", "")
    return label.replace(" (of any race)", "")


def _education_words(label: str | None, age: int) -> str | None:
    """Children get their grade ("4th grade"), not the ACS enrollment band (grades 1-8)."""
    if not label or not label.startswith("In school"):
        return label
    grade = age - 5
    if grade < 0:
        return "preschool"
    if grade == 0:
        return "kindergarten"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(grade if grade < 20 else grade % 10, "th")
    school = "elementary" if grade <= 5 else "middle" if grade <= 8 else "high"
    return f"{grade}{suffix} grade ({school} school)"


def _marital_words(label: str | None) -> str | None:
    """ACS "Now married, except separated" reads as "married" to a model."""
    return label.split(",")[0].removeprefix("Now ").lower() if label else None


def render_profile(row: dict[str, Any]) -> str:
    """The skeleton as the short bullet list that the generator and the judges read."""
    income = row.get("household_income")
    items = [
        ("Name", row["name"]),
        ("Age", row["age"]),
        ("Sex", row["sex"]),
        ("Race/ethnicity", _race_words(row.get("race_ethnicity"))),
        ("Lives in", row.get("state")),
        ("Education", _education_words(row.get("education"), row["age"])),
        ("Work", work_line(row)[0]),
        ("Marital status", _marital_words(row.get("marital_status"))),
        ("Household income", f"${income:,} a year" if income is not None else None),
        ("Personality", describe_traits(row.get("traits"))),
    ]
    return "\n".join(f"- {k}: {v}" for k, v in items if v not in (None, ""))


def split_seed(text: str | None) -> tuple[str, ...]:
    """Seed text -> sentences (each becomes one verbatim fact)."""
    parts = re.split(r"(?<=[.!?])\s+", (text or "").strip())
    return tuple(p.strip() for p in parts if p.strip())


def generator_messages(
    row: dict[str, Any], facts_min: int, facts_max: int, seeds: tuple[str, ...]
) -> Messages:
    """First-round messages of the persona generator."""
    prompt = load_prompt("generate")
    age_rule = next(r["text"] for r in prompt.parts["age_rule"] if row["age"] <= r["max_age"])
    seed_block = ""
    if seeds:
        seed_block = prompt.text("seed_block", seed_lines="\n".join(f"- {s}" for s in seeds))
    return prompt.messages(
        profile=render_profile(row),
        seed_block=seed_block,
        opener=opener(row),
        work_hint=work_line(row)[1],
        facts_min=facts_min,
        facts_max=facts_max,
        categories=", ".join(load_categories()[0]),
        age_rule=age_rule,
    )


def opener(row: dict[str, Any]) -> str:
    """The narrative's given first sentences: name, age and state, exactly as sampled."""
    return f"My name is {row['name']}. I am {row['age']} years old and I live in {row['state']}."


def revision_messages(base: Messages, feedback: str) -> Messages:
    """Later rounds: the first-round prompt plus the critique, without the last draft.

    Shown its last draft, the 0.5B model copied it (duplicates included) and changed
    little; a fresh draft told what to avoid fared better, and costs fewer tokens. The
    critique quotes the offending sentences, so nothing needed is lost.
    """
    revise = load_prompt("generate").text("revise", feedback=feedback)
    return [*base[:-1], {"role": "user", "content": f"{base[-1]['content']}\n\n{revise}"}]


def numbered_facts(candidate: PersonaCandidate) -> str:
    return "\n".join(f"{n}. {f.statement}" for n, f in enumerate(candidate.facts, 1))


def coherence_messages(candidate: PersonaCandidate, context: PersonaContext) -> Messages:
    """Judge prompt: do facts contradict each other or the profile?"""
    return load_prompt("judge_coherence").messages(
        profile=context.profile_text, facts=numbered_facts(candidate)
    )


def realism_messages(candidate: PersonaCandidate, context: PersonaContext) -> Messages:
    """Judge prompt: is this a specific, believable, non-stereotyped person?"""
    return load_prompt("judge_realism").messages(
        profile=context.profile_text,
        narrative=candidate.narrative,
        facts=numbered_facts(candidate),
    )
