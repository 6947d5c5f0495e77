"""Run checkpoints: atomic shards, fingerprints, concatenation in shard order."""

from __future__ import annotations

import pyarrow as pa

from personafoundry.checkpoint import RunStore


def table(ids: list[str]) -> pa.Table:
    return pa.table({"item_id": ids, "n": list(range(len(ids)))})


def test_shards_concatenate_in_shard_order(tmp_path):
    store = RunStore.open(tmp_path, "run-1")
    store.write_shard("stage", 1, "fp1", {"table": table(["c", "d"])}, {"accepted": 2})
    store.write_shard("stage", 0, "fp0", {"table": table(["a", "b"])}, {"accepted": 2})
    assert store.read_part("stage")["item_id"].to_pylist() == ["a", "b", "c", "d"]
    assert [s["accepted"] for s in store.shard_stats("stage")] == [2, 2]


def test_changed_fingerprint_means_shard_is_not_done(tmp_path):
    store = RunStore.open(tmp_path, "run-1")
    store.write_shard("stage", 0, "fp-a", {"table": table(["a"])}, {})
    assert store.has_shard("stage", 0, "fp-a")
    assert not store.has_shard("stage", 0, "fp-b")
    assert not store.has_shard("stage", 1, "fp-a")


def test_shard_without_marker_is_invisible(tmp_path):
    """A crash between the Parquet files and the marker leaves no half shard behind."""
    store = RunStore.open(tmp_path, "run-1")
    store.write_shard("stage", 0, "fp", {"table": table(["a"])}, {})
    (store.stage_dir("stage") / "shard-0001.table.parquet").write_bytes(b"partial")
    assert store.read_part("stage").num_rows == 1
    assert not list(store.stage_dir("stage").glob(".*.tmp"))


def test_missing_parts_and_latest(tmp_path):
    store = RunStore.open(tmp_path, "run-1")
    assert store.read_part("nothing") is None
    store.write_shard("raw", 0, "fp", {"table": table(["a", "b"]), "reviews": None}, {})
    assert store.read_part("raw", "reviews") is None
    assert store.read_latest("deduped", "raw").num_rows == 2
