"""The personas flow's inputs honour the seed config: strictness and column mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.personas import skeletons
from personafoundry.config import build_config
from personafoundry.errors import SeedFileError


def config(tmp_path: Path, seed_file: Path, **personas) -> object:
    data = {"output_dir": str(tmp_path / "out"), "seed": 3,
            "personas": {"census_count": 2, "seed_files": [str(seed_file)], **personas}}  # fmt: skip
    return build_config(data)


def test_lenient_seed_config_skips_the_bad_row_and_counts_it(tmp_path):
    seeds = tmp_path / "people.csv"
    seeds.write_text("id,bio\na,I am a nurse and I have two dogs.\nb,\nc,I live in Ohio.\n")
    table, dropped, stats = skeletons(config(tmp_path, seeds, seed_strict=False,
                                             seed_columns={"text": "bio"}))  # fmt: skip
    assert table.num_rows == 4  # 2 census + 2 good seeds
    assert stats["seed_dropped"] == 1 and dropped.num_rows == 1
    assert dropped["location"][0].as_py() == f"{seeds} line 3"
    assert 'column "bio"' in dropped["reason"][0].as_py()
    texts = [t for t in table["seed_text"].to_pylist() if t]
    assert texts == ["I am a nurse and I have two dogs.", "I live in Ohio."]


def test_strict_seed_config_stops_on_the_bad_row_naming_the_file(tmp_path):
    seeds = tmp_path / "people.csv"
    seeds.write_text("id,bio\na,I am a nurse.\nb,\n")
    with pytest.raises(SeedFileError, match="people.csv"):
        skeletons(config(tmp_path, seeds, seed_columns={"text": "bio"}))
