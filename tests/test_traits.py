"""Big Five traits are sampled deterministically and kept when given."""

from __future__ import annotations

import pyarrow as pa
import pytest

from personafoundry.traits import assign_traits
from schemas.personas import TRAITS, TRAITS_TYPE


def test_traits_are_filled_in_range_and_deterministic():
    table = pa.table({"persona_id": [f"per_{i}" for i in range(200)]})
    a, b = assign_traits(table, rng_seed=1), assign_traits(table, rng_seed=1)
    assert a.equals(b)
    values = [v for row in a["traits"].to_pylist() for v in row.values()]
    assert all(0 < v < 1 for v in values)
    assert 0.45 < sum(values) / len(values) < 0.55
    assert not a.equals(assign_traits(table, rng_seed=2))


def test_given_traits_are_kept():
    given = dict.fromkeys(TRAITS, 0.9)
    table = pa.table({"persona_id": ["a", "b"],
                      "traits": pa.array([given, None], type=TRAITS_TYPE)})
    out = assign_traits(table, rng_seed=0)["traits"].to_pylist()
    assert out[0] == pytest.approx(given) and out[1] is not None and out[1] != out[0]
