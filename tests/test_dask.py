"""Scale-out: the pipeline on a 2-worker Dask LocalCluster gives the thread runner's tables.

The reference is the session's uninterrupted SMALL run on Prefect's thread pool
(`pipeline_runs.clean_run`); this run sends the same config with
`orchestration.task_runner = "dask"` to its own output folder, so every shard task runs in
a Dask worker process: pickled tasks, endpoints and checkpoints, the SQLite response cache
written by two processes at once, Prefect's API reached from the workers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from llm_server import LlmServer
from pipeline_runs import (
    MODEL,
    REJECT_RATE,
    CleanRun,
    clean_run,
    release_rows,
    small_config,
)  # fmt: skip
from plausible import Plausible

from flows.pipeline import pipeline_flow
from personafoundry.checkpoint import RunStore
from personafoundry.config import build_config

DASK = {"orchestration": {"task_runner": "dask", "dask_workers": 2}}


def first_difference(got: list[dict], expected: list[dict]) -> str:
    """Where two tables' rows first differ: row index, column, both values."""
    if len(got) != len(expected):
        return f"{len(got)} rows, expected {len(expected)}"
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        for key in b:
            if a.get(key) != b[key]:
                return f"row {i} column {key}: {a.get(key)!r:.300} != {b[key]!r:.300}"
    return "same rows"


@pytest.fixture(scope="module")
def clean(prefect_harness, tmp_path_factory) -> CleanRun:
    return clean_run(tmp_path_factory.mktemp("clean"))


@pytest.mark.timeout(600)
def test_dask_local_cluster_gives_the_same_tables_as_threads(clean: CleanRun, tmp_path: Path):
    server = LlmServer(models=[MODEL], responder=Plausible(reject_rate=REJECT_RATE)).start()
    try:
        cfg = build_config(small_config(tmp_path / "outputs", server.base_url, DASK), "dask")
        threads = build_config(small_config(tmp_path / "outputs", server.base_url), "threads")
        assert cfg.resolved_run_id() == threads.resolved_run_id()  # execution is not hashed
        summary = pipeline_flow(cfg)
        rows = release_rows(Path(summary["release_path"]))
        assert rows.keys() == clean.rows.keys()
        for table, expected in clean.rows.items():
            assert rows[table] == expected, f"{table}: {first_difference(rows[table], expected)}"
        # Shards ran in the workers, not in this process, and every shard was committed.
        store = RunStore.open(tmp_path / "outputs", summary["run_id"])
        writers = set()
        for stage in ("personas", "conversations", "documents"):
            markers = [json.loads(m.read_text()) for m in (store.root / stage).glob("shard-*.json")]
            assert markers and all(m["stats"] for m in markers), stage
            writers |= {m["written_by"].rsplit(":", 1)[1] for m in markers}
        assert str(os.getpid()) not in writers and len(writers) == 2, writers
        assert len(server.requests) == clean.requests  # same calls, none paid twice
        assert server.count_duplicates() == 0
        assert not server.errors, server.errors
    finally:
        server.stop()
