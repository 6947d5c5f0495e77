"""Names come from the SSA and Census 2020 tables, by sex, birth decade and race."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personafoundry.names import PCT_COLUMNS, load_name_tables, sample_names, title_case

RACES = (
    "Hispanic or Latino (of any race)",
    "Not Hispanic: White alone",
    "Not Hispanic: Asian alone",
    "Not Hispanic: Some Other Race alone",
)


def _sample(n: int, sex: str, age: int, race: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    names = sample_names(np.full(n, sex), np.full(n, age), np.full(n, race), RACES, 2023, rng)
    return names.to_pylist()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("MARY", "Mary"), ("MCDONALD", "McDonald"), ("SMITH-JONES", "Smith-Jones"), ("O", "O")],
)
def test_title_case(raw: str, expected: str) -> None:
    assert title_case(raw) == expected


def test_names_come_from_the_data_tables() -> None:
    tables = load_name_tables()
    first_1950_f = set(tables.first[(1950, "F")][0])
    surnames = set(tables.surnames)
    for full in _sample(2_000, "Female", 2023 - 1955, 1):
        first, last = full.split(" ", 1)
        assert first in first_1950_f and last in surnames


def test_same_rng_state_gives_same_names() -> None:
    assert _sample(500, "Male", 30, 0, seed=4) == _sample(500, "Male", 30, 0, seed=4)
    assert _sample(500, "Male", 30, 0, seed=4) != _sample(500, "Male", 30, 0, seed=5)


def test_first_names_follow_birth_decade_and_sex() -> None:
    old = pd.Series([n.split()[0] for n in _sample(3_000, "Female", 90, 1)]).value_counts()
    young = pd.Series([n.split()[0] for n in _sample(3_000, "Female", 20, 1)]).value_counts()
    tables = load_name_tables()
    top_1930 = tables.first[(1930, "F")][0][np.argmax(tables.first[(1930, "F")][1])]
    assert old.index[0] == top_1930  # Mary, by a wide margin in the 1930s
    assert young.get(top_1930, 0) < old[top_1930] / 5


def test_race_shares_reweight_surnames() -> None:
    tables = load_name_tables()
    pct = pd.Series(tables.surname_pct[:, PCT_COLUMNS.index("pcthispanic")], index=tables.surnames)
    pct = pct[~pct.index.duplicated()]
    hispanic = pct.reindex([n.split(" ", 1)[1] for n in _sample(2_000, "Male", 40, 0)]).mean()
    white = pct.reindex([n.split(" ", 1)[1] for n in _sample(2_000, "Male", 40, 1)]).mean()
    assert hispanic > 60
    assert white < 15


def test_group_without_name_file_share_is_not_reweighted() -> None:
    names = _sample(200, "Male", 40, 3)
    assert len(names) == 200 and all(" " in n for n in names)


@pytest.mark.parametrize("sex", ["Male", "Female"])
def test_race_shares_reweight_first_names(sex: str) -> None:
    """Same sex and birth decade (1980s): the Hispanic group draws first names whose
    Census 2020 Hispanic share is far higher than the non-Hispanic White group's, and each
    group's mean share matches P_SSA(name) x pct_race(name), the stated reweighting."""
    names, p, pct = load_name_tables().first[(1980, sex[0])]
    hispanic_pct = pd.Series(pct[:, PCT_COLUMNS.index("pcthispanic")], index=names)

    def expected(column: str | None) -> float:
        weight = p * (pct[:, PCT_COLUMNS.index(column)] if column else 1.0)
        return float((weight * hispanic_pct.to_numpy()).sum() / weight.sum())

    drawn = {
        race: hispanic_pct.reindex([n.split(" ")[0] for n in _sample(4_000, sex, 40, race)])
        for race in (0, 1, 3)  # Hispanic, non-Hispanic White, Some Other Race (not reweighted)
    }
    assert drawn[0].mean() > 2.5 * drawn[1].mean()
    assert drawn[1].mean() < drawn[3].mean() < drawn[0].mean()
    for race, column in ((0, "pcthispanic"), (1, "pctwhite"), (3, None)):
        se = drawn[race].std() / np.sqrt(len(drawn[race]))
        assert abs(drawn[race].mean() - expected(column)) < 4 * se, (race, column)
