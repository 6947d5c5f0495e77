"""Fill what a persona skeleton lacks before enrichment: seed demographics, name, traits.

Decisions:
- Seed personas: age, sex and state the seed loader left empty (and the occupation when
  the employment status is unknown too) are read from the seed text by one LLM call. The
  reply is validated (age 0-120, a real US state, spelled out or postal code, no job
  under 16) and re-asked with the error on failure; a stated value always wins over it.
- Names are never invented by the LLM: a seed persona without one gets a census/SSA name
  (`personafoundry.names.sample_names`: first name by sex and birth decade, surname by
  race share when known), redrawn until unused in the release.
- Big Five traits, when the skeleton has none, are percentiles of independent T-scores
  (mean 50, sd 10), i.e. Phi(z) on a 0-1 scale: independent of demographics (no trait is
  derived from race or sex), seeded per persona so shards and reruns agree.
"""

from __future__ import annotations

import math
import tomllib
from functools import cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from personafoundry.ids import stable_hash
from personafoundry.llm import LlmClient, LlmResult
from personafoundry.names import sample_names
from personafoundry.paths import SEEDS_DIR
from personafoundry.persona_prompts import seed_fill_messages
from schemas.common import US_STATES
from schemas.personas import TRAITS

POSTAL = (  # same order as US_STATES
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY",
)  # fmt: skip
STATE_BY_KEY = {
    **{s.lower(): s for s in US_STATES},
    **{p.lower(): s for p, s in zip(POSTAL, US_STATES)},
}
NAME_TRIES = 20


@cache
def reference_year() -> int:
    """The census vintage year personas live in (`seeds/census/rules.toml`)."""
    path = SEEDS_DIR / "census" / "rules.toml"
    data = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
    return int(data.get("reference_year", 2023))


class SeedDemographics(BaseModel):
    """Demographics read from a seed text; validated by `_check_seed_fill`."""

    age: int = Field(ge=0, le=120)
    sex: Literal["Male", "Female"]
    state: str
    occupation: str


def _check_seed_fill(value: SeedDemographics) -> None:
    if value.state.strip().lower().removesuffix(".") not in STATE_BY_KEY:
        raise ValueError(
            f"state {value.state!r} is not a US state; spell out one of the 50 states or "
            "District of Columbia"
        )
    if value.occupation.strip() and value.age < 16:
        raise ValueError(f'age {value.age} is too young for an occupation; use "" or an older age')


def needs_fill(row: dict[str, Any]) -> bool:
    return row.get("source") == "seed" and any(row.get(c) is None for c in ("age", "sex", "state"))


async def fill_seed_demographics(
    row: dict[str, Any], llm: LlmClient, *, seed: int
) -> LlmResult[SeedDemographics]:
    """Ask the generator for demographics stated or implied by the seed text."""
    return await llm.complete_json(
        "generator", seed_fill_messages(row["seed_text"]), SeedDemographics, seed=seed, check=_check_seed_fill,
        temperature=0.0, max_tokens=80,
    )  # fmt: skip


def apply_fill(row: dict[str, Any], value: SeedDemographics) -> dict[str, Any]:
    """Fill only the columns the seed loader left empty; stated values always win."""
    out = dict(row)
    filled = {
        "age": value.age,
        "sex": value.sex,
        "state": STATE_BY_KEY[value.state.strip().lower().removesuffix(".")],
    }
    for column, v in filled.items():
        if out.get(column) is None:
            out[column] = v
    if out.get("occupation") is None and out.get("employment_status") is None:
        job = value.occupation.strip()
        if job and out["age"] >= 16:
            out["occupation"], out["employment_status"] = job, "Employed"
    return out


def sample_traits(rng_seed: int, persona_id: str) -> dict[str, float]:
    """Big Five as percentiles of independent T-scores (mean 50, sd 10), i.e. Phi(z).

    Seeded per persona, independent of demographics, so shards and reruns agree.
    """
    rng = np.random.default_rng(int(stable_hash([rng_seed, persona_id, "traits"]), 16))
    z = rng.standard_normal(len(TRAITS))
    return {t: round(0.5 * (1 + math.erf(v / math.sqrt(2))), 3) for t, v in zip(TRAITS, z)}


def sample_name(row: dict[str, Any], rng_seed: int, taken: set[str]) -> str | None:
    """A census/SSA name for a seed persona without one (sex, birth decade, race if known)."""
    rng = np.random.default_rng(int(stable_hash([rng_seed, row["persona_id"], "name"]), 16))
    race = row.get("race_ethnicity") or ""
    for _ in range(NAME_TRIES):
        name = sample_names(
            np.array([row["sex"]], dtype=object), np.array([int(row["age"])]),
            np.array([0]), (race,), reference_year(), rng,
        )[0].as_py()  # fmt: skip
        if name not in taken:
            return name
    return None
