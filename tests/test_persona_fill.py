"""Big Five traits follow their stated distribution, independent of demographics."""

from __future__ import annotations

import numpy as np
import pytest

from personafoundry.census import sample_personas
from personafoundry.config import PersonasConfig
from personafoundry.persona_fill import sample_traits, t_scores
from schemas.personas import TRAITS

N = 20_000


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Traits of N census skeletons (percentiles, [N, 5]) and their demographics."""
    table = sample_personas(N, PersonasConfig(), rng_seed=21).table
    traits = [sample_traits(21, pid) for pid in table["persona_id"].to_pylist()]
    p = np.array([[t[k] for k in TRAITS] for t in traits])
    race = np.array(table["race_ethnicity"].to_pylist())
    demographics = {
        "age": table["age"].to_numpy().astype(float),
        "male": (np.array(table["sex"].to_pylist()) == "Male").astype(float),
        "hispanic": np.char.startswith(race.astype(str), "Hispanic").astype(float),
    }
    return p, demographics


def test_stored_percentiles_are_uniform(sample: tuple[np.ndarray, dict]) -> None:
    p, _ = sample
    assert p.min() >= 0.001 and p.max() <= 0.999  # z clipped at +-3: never 0 or 1
    grid = np.sort(p, axis=0)
    uniform = np.arange(1, N + 1)[:, None] / N
    ks = np.abs(grid - uniform).max(axis=0)  # Kolmogorov-Smirnov distance per trait
    assert (ks < 1.95 / np.sqrt(N) + 0.002).all(), ks  # 0.1% critical value + rounding


def test_implied_t_scores_have_mean_50_sd_10_within_20_80(
    sample: tuple[np.ndarray, dict],
) -> None:
    t = t_scores(sample[0])
    assert t.min() >= 20 and t.max() <= 80
    assert np.allclose(t.mean(axis=0), 50, atol=0.35), t.mean(axis=0)  # SE 0.07
    assert np.allclose(t.std(axis=0), 10, atol=0.25), t.std(axis=0)  # clipping: 9.93


def test_traits_are_independent_of_each_other_and_of_demographics(
    sample: tuple[np.ndarray, dict],
) -> None:
    p, demographics = sample
    corr = np.corrcoef(p, rowvar=False)
    assert np.abs(corr[np.triu_indices(len(TRAITS), 1)]).max() < 0.035  # SE 0.007
    for name, values in demographics.items():
        r = [np.corrcoef(values, p[:, k])[0, 1] for k in range(len(TRAITS))]
        assert np.abs(r).max() < 0.035, (name, r)


def test_traits_depend_on_run_seed_and_persona_only() -> None:
    assert sample_traits(1, "per_a") == sample_traits(1, "per_a")
    assert sample_traits(1, "per_a") != sample_traits(2, "per_a")
    assert sample_traits(1, "per_a") != sample_traits(1, "per_b")
    assert set(sample_traits(1, "per_a")) == set(TRAITS)
