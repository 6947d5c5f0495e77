"""Names are unique within a release: repeats are redrawn from the same distributions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from personafoundry import unique_names
from personafoundry.census import sample_personas
from personafoundry.config import PersonasConfig
from personafoundry.names import PCT_COLUMNS, load_name_tables, sample_names
from personafoundry.seeds import load_seed_personas
from personafoundry.unique_names import (
    name_keys,
    sample_unique_names,
    unique_skeleton_names,
    unique_table_names,
)
from schemas.personas import SCHEMA

HISPANIC = ("Hispanic or Latino (of any race)",)


def _group(n: int, seed: int = 0, **kw: object) -> tuple[pa.Array, np.ndarray]:
    """`n` Hispanic men aged 40: a narrow group whose heavy names repeat often."""
    rng = np.random.default_rng(seed)
    sex, age, race = np.full(n, "Male", dtype=object), np.full(n, 40), np.zeros(n, dtype=int)
    return sample_unique_names(sex, age, race, HISPANIC, 2023, rng, **kw)


def _hispanic_surname_share(names: list[str]) -> float:
    tables = load_name_tables()
    pct = pd.Series(tables.surname_pct[:, PCT_COLUMNS.index("pcthispanic")], index=tables.surnames)
    return float(pct.reindex([n.split(" ", 1)[1] for n in names]).mean())


def test_repeats_in_a_narrow_group_are_redrawn_from_the_same_distribution() -> None:
    n = 20_000
    rng = np.random.default_rng(0)
    plain = sample_names(
        np.full(n, "Male", dtype=object), np.full(n, 40), np.zeros(n, int), HISPANIC, 2023, rng
    ).to_pylist()
    assert len(set(plain)) < n  # the group does repeat names (e.g. "Jose Garcia")
    names, unresolved = _group(n)
    assert len(pc.unique(names)) == n and not unresolved.any()
    tables = load_name_tables()
    firsts, surnames = set(tables.first[(1980, "M")][0]), set(tables.surnames)
    assert all(f in firsts and s in surnames for f, s in (x.split(" ") for x in names.to_pylist()))
    assert _hispanic_surname_share(names.to_pylist()) > 60  # still the group's surnames


def test_same_generator_state_gives_same_unique_names() -> None:
    assert _group(3_000, seed=2)[0].equals(_group(3_000, seed=2)[0])
    assert not _group(3_000, seed=2)[0].equals(_group(3_000, seed=3)[0])


def test_fixed_names_are_kept_and_win_over_drawn_rows() -> None:
    drawn = _group(2_000)[0].to_pylist()
    given = list(drawn)
    given[0], given[2] = "Zorg Blart", None  # a name outside the tables; a missing name
    given[10], given[11] = drawn[5], drawn[7]  # fixed rows holding two drawn rows' names
    fixed = np.zeros(2_000, dtype=bool)
    fixed[[0, 10, 11]] = True
    out, unresolved = _group(2_000, names=pa.array(given, pa.string()), fixed=fixed)
    out = out.to_pylist()
    assert (out[0], out[10], out[11]) == ("Zorg Blart", drawn[5], drawn[7])
    assert out[5] != drawn[5] and out[7] != drawn[7]  # the drawn rows gave way
    assert out[2] is not None  # a missing name is drawn
    same = [i for i in range(2_000) if i not in (2, 5, 7)]
    assert [out[i] for i in same] == [given[i] for i in same]  # nothing else changes
    assert len(set(out)) == 2_000 and not unresolved.any()


def test_name_keys_equal_exactly_when_strings_equal() -> None:
    names = pa.array(["Mary Smith", "Mary Smith", "Smith Mary", "Zorg Blart", "Zorg Blart",
                      "Mary Ann Smith", "mary smith"])  # fmt: skip
    keys = name_keys(names)
    assert keys[0] == keys[1] and keys[3] == keys[4]
    assert len({keys[0], keys[2], keys[3], keys[5], keys[6]}) == 5


def test_census_sample_has_unique_names() -> None:
    table = sample_personas(30_000, PersonasConfig(), rng_seed=8).table
    assert len(pc.unique(table["name"])) == table.num_rows == 30_000


def test_a_sample_left_repeating_a_name_drops_it_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(unique_names, "MAX_ROUNDS", 0)  # no redraws: every repeat remains
    sample = sample_personas(30_000, PersonasConfig(), rng_seed=8)
    assert sample.dropped.num_rows > 0
    assert sample.stats["census_rows"] + sample.stats["census_dropped"] == 30_000
    assert set(sample.dropped["reason"].to_pylist()) == {
        "duplicate_name: every redraw of the name was already used in this sample"
    }
    assert len(pc.unique(sample.table["name"])) == sample.table.num_rows


def test_skeletons_census_rows_give_way_to_seed_names(tmp_path: Path) -> None:
    census = sample_personas(50, PersonasConfig(), rng_seed=3).table
    taken = census["name"].to_pylist()
    seed_file = tmp_path / "p.jsonl"
    seed_file.write_text(
        f'{{"text": "I fix bikes.", "name": "{taken[4]}"}}\n{{"text": "I knit."}}\n', "utf-8"
    )
    seeds = load_seed_personas([seed_file], rng_seed=3).table
    both = pa.concat_tables([census, seeds])
    both = both.set_column(  # and a seed whose drawn name a census row also drew
        both.schema.get_field_index("name"), "name",
        pa.array(taken + [taken[4], taken[9]], pa.string()),
    )  # fmt: skip
    out = unique_skeleton_names(both, rng_seed=3)
    names = out["name"].to_pylist()
    assert len(set(names)) == len(names)
    assert names[-2:] == [taken[4], taken[9]]  # seed rows keep theirs
    assert names[4] != taken[4] and names[9] != taken[9]
    assert names[:4] == taken[:4]
    assert out.drop_columns(["name"]).equals(both.drop_columns(["name"]))
    assert out.equals(unique_skeleton_names(both, rng_seed=3))  # deterministic
    assert unique_skeleton_names(out, rng_seed=3) is out  # nothing to do: unchanged


def test_unique_table_names_reports_rows_it_cannot_settle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = sample_personas(10, PersonasConfig(), rng_seed=1).table
    twice = pa.concat_tables([table, table])
    monkeypatch.setattr(unique_names, "MAX_ROUNDS", 0)
    out, unresolved = unique_table_names(twice, np.zeros(20, dtype=bool), rng_seed=1)
    assert unresolved.tolist() == [False] * 10 + [True] * 10
    assert out.equals(twice)


def test_schema_declares_names_unique_and_validation_names_the_rows() -> None:
    from personafoundry.validate import run_expectations

    assert {c.name: c for c in SCHEMA.columns}["name"].unique
    table = sample_personas(6, PersonasConfig(), rng_seed=1).table
    names = table["name"].to_pylist()
    names[3] = names[0]
    i = table.schema.get_field_index("name")
    table = table.set_column(i, table.schema.field(i), pa.array(names, pa.string()))
    results = run_expectations({"personas": table}, {"personas": SCHEMA}, 5)["__results__"]
    (failure,) = [r for r in results if not r.success]
    assert (failure.check, failure.column) == ("expect_column_values_to_be_unique", "name")
    assert {e["__row"] for e in failure.examples} == {0, 3}
