"""Fill what a persona skeleton lacks before enrichment: a name and Big Five traits.

Decisions:
- Names are never invented by the LLM: census/SSA names (`personafoundry.names`:
  first name by sex and birth decade, surname by race share), redrawn until unused in the
  release. Seed demographics come from `personafoundry.seed_text` (what the text states)
  and `personafoundry.census_condition` (the rest, census-conditional), not from here.
- Big Five traits, when the skeleton has none, are percentiles of independent T-scores
  (mean 50, sd 10), i.e. Phi(z) on a 0-1 scale: independent of demographics (no trait is
  derived from race or sex), seeded per persona so shards and reruns agree.
"""

from __future__ import annotations

import math
import tomllib
from functools import cache
from typing import Any

import numpy as np

from personafoundry.ids import stable_hash
from personafoundry.names import sample_names
from personafoundry.paths import SEEDS_DIR
from schemas.personas import TRAITS

NAME_TRIES = 20


@cache
def reference_year() -> int:
    """The census vintage year personas live in (`seeds/census/rules.toml`)."""
    path = SEEDS_DIR / "census" / "rules.toml"
    data = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
    return int(data.get("reference_year", 2023))


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
