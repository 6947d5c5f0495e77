"""Fill what a persona skeleton lacks before enrichment: a name and Big Five traits.

Decisions:
- Names are never invented by the LLM: census/SSA names (`personafoundry.names`:
  first name by sex and birth decade, surname by race share), redrawn until unused in the
  release. Seed demographics come from `personafoundry.seed_text` (what the text states)
  and `personafoundry.census_condition` (the rest, census-conditional), not from here.
- Big Five traits, when the skeleton has none: for each of the five traits independently,
  a T-score T = 50 + 10 z with z ~ N(0, 1) clipped to [-3, 3] (T in [20, 80]), stored as
  its normal percentile p = Phi(z) rounded to 3 decimals (0.001-0.999). So the stored
  values are uniform on (0, 1) apart from the clipped tails (0.135% at each end) and
  the rounding; `t_scores` turns them back into T-scores. The generator is seeded by
  (run seed, persona id) only: traits are independent of every demographic (no trait is
  derived from race, sex or age) and of each other, and shards and reruns agree.
  Percentiles, not T-scores, are stored because the schema, prompts and reports read
  traits on 0-1.
"""

from __future__ import annotations

import math
import tomllib
from functools import cache
from statistics import NormalDist
from typing import Any

import numpy as np

from personafoundry.ids import stable_hash
from personafoundry.names import sample_names
from personafoundry.paths import SEEDS_DIR
from schemas.personas import TRAITS

NAME_TRIES = 20
T_MEAN, T_SD = 50.0, 10.0  # T-score scale of the Big Five traits
Z_CLIP = 3.0  # z clipped to +-3 sd: T in [20, 80]


@cache
def reference_year() -> int:
    """The census vintage year personas live in (`seeds/census/rules.toml`)."""
    path = SEEDS_DIR / "census" / "rules.toml"
    data = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
    return int(data.get("reference_year", 2023))


def sample_traits(rng_seed: int, persona_id: str) -> dict[str, float]:
    """Big Five as percentiles Phi(z) of independent T-scores 50 + 10 z, z ~ N(0, 1)
    clipped to [-3, 3], rounded to 3 decimals (see the module docstring).

    Seeded by (run seed, persona id) only: independent of demographics and reproducible.
    """
    rng = np.random.default_rng(int(stable_hash([rng_seed, persona_id, "traits"]), 16))
    z = np.clip(rng.standard_normal(len(TRAITS)), -Z_CLIP, Z_CLIP)
    return {t: round(0.5 * (1 + math.erf(v / math.sqrt(2))), 3) for t, v in zip(TRAITS, z)}


def t_scores(percentiles: np.ndarray) -> np.ndarray:
    """T-scores (mean 50, sd 10, in [20, 80]) of stored trait percentiles."""
    z = np.vectorize(NormalDist().inv_cdf, otypes=[float])(
        np.clip(np.asarray(percentiles, dtype=float), 1e-9, 1 - 1e-9)
    )
    return T_MEAN + T_SD * np.clip(z, -Z_CLIP, Z_CLIP)


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
