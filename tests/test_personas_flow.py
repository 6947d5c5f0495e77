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


def test_every_skeleton_has_a_name_unique_over_census_and_seed_rows(tmp_path):
    """Shards enrich concurrently, so names must be unique before the table is sharded; a
    name the seed file gives wins over a census row's drawn one."""
    base = {"output_dir": str(tmp_path / "out"), "seed": 3, "shard_size": 4,
            "personas": {"census_count": 40}}  # fmt: skip
    census_names = skeletons(build_config(base))[0]["name"].to_pylist()
    seeds = tmp_path / "people.jsonl"
    rows = [
        f'{{"name": "{n}", "text": "I keep {i} bees."}}' for i, n in enumerate(census_names[:5])
    ]
    seeds.write_text("\n".join(rows) + "\n")
    base["personas"] = {**base["personas"], "seed_files": [str(seeds)],
                        "seed_columns": {"name": "name"}}  # fmt: skip
    table, _, _ = skeletons(build_config(base))
    names = table["name"].to_pylist()
    assert table.num_rows == 45 and None not in names and len(set(names)) == len(names)
    assert names[40:] == census_names[:5]  # the seeds keep their names; census rows redraw
