"""Resume after a crash: SIGKILL in the middle of a stage, budget stops; nothing lost or repaid.

The pipeline runs in a child process (`personafoundry run`) against a test server that
lives in this process, so the server outlives the killed child and sees every request of
both the killed and the resumed run. Both runs use this session's Prefect server.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from llm_server import LlmServer
from pipeline_runs import (
    CLI,
    MODEL,
    REJECT_RATE,
    CleanRun,
    cache_key_of,
    clean_cli_run,
    cli_env,
    ledger_tokens,
    release_rows,
    run_cli,
    small_config,
    write_toml,
)  # fmt: skip
from plausible import Plausible, schema_of

from flows.personas import personas_flow
from personafoundry.checkpoint import RunStore
from personafoundry.config import build_config
from personafoundry.paths import PROJECT_ROOT

LATENCY_S = 0.05  # long enough that a stage spans many requests, short enough for a test


@pytest.fixture(scope="module")
def clean(prefect_harness, tmp_path_factory) -> CleanRun:
    return clean_cli_run(tmp_path_factory.mktemp("clean_cli"))


class Tripwire:
    """Responder wrapper: sets `reached` at the first request for one of `schemas` made after
    `marker` exists, i.e. once a shard of the stage is committed and the next one is under way."""

    def __init__(self, inner: Plausible, schemas: set[str], marker: Path) -> None:
        self.inner, self.schemas, self.marker = inner, schemas, marker
        self.reached = threading.Event()

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        if schema_of(payload)[0] in self.schemas and self.marker.exists():
            self.reached.set()
        return self.inner(payload)


def cached_keys(cache: Path) -> set[str]:
    with sqlite3.connect(cache) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM responses")}


def assert_same_release(rows: dict[str, list[dict]], clean: CleanRun) -> None:
    assert set(rows) == set(clean.rows)
    for table, expected in clean.rows.items():
        assert rows[table] == expected, f"{table} differs from the uninterrupted run"


def test_sigkill_mid_stage_then_resume_loses_nothing_and_repays_nothing(clean, tmp_path):
    server = LlmServer(LATENCY_S, models=[MODEL]).start()
    try:
        # One shard in flight at a time, so "a shard committed, the next under way" is a real
        # mid-stage point; execution settings are outside the config hash, so the tables
        # must still equal the clean run's (which ran its shards concurrently).
        serial = {"orchestration": {"parallel_shards": 1}}
        data = small_config(tmp_path / "outputs", server.base_url, serial)
        config = write_toml(data, tmp_path / "run.toml")
        run_id = build_config(data).resolved_run_id()
        assert (
            run_id
            == build_config(small_config(tmp_path / "outputs", server.base_url)).resolved_run_id()
        )
        first_shard = tmp_path / "outputs" / "runs" / run_id / "conversations" / "shard-0000.json"
        drafts = {"TurnReply", "OneCallReply"}  # either generation mode's requests
        trip = Tripwire(Plausible(reject_rate=REJECT_RATE), drafts, first_shard)
        server.responder = trip
        with open(tmp_path / "killed.log", "w") as log:
            child = subprocess.Popen([*CLI, "run", "--config", str(config)], env=cli_env(),
                                     cwd=PROJECT_ROOT, stdout=log, stderr=log)  # fmt: skip
            try:
                for _ in range(600):  # stop waiting as soon as the child ends on its own
                    if trip.reached.wait(timeout=1) or child.poll() is not None:
                        break
                assert trip.reached.is_set(), "the run never reached a second conversations shard"
                os.kill(child.pid, signal.SIGKILL)
            finally:
                child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL
        store = RunStore.open(tmp_path / "outputs", run_id)
        committed = len(store.shard_stats("conversations"))
        assert 0 < committed < clean.summary["stats"]["conversations"]["shards"], committed
        assert not (tmp_path / "outputs" / "releases").exists()
        paid_before = cached_keys(tmp_path / "outputs" / "cache" / "responses.sqlite")
        received_before = len(server.requests)

        resumed = run_cli("run", "--config", str(config), "--resume", run_id)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "already done, skipped" in resumed.stderr  # committed shards were not redone

        after = server.requests[received_before:]
        repaid = [p for p in after if cache_key_of(p, server.base_url) in paid_before]
        assert repaid == [], "a request whose reply was already paid for was sent again"
        # Only requests in flight at the kill (sent, never answered) may be sent twice.
        assert server.count_duplicates() <= received_before - len(paid_before)
        release = tmp_path / "outputs" / "releases" / "small" / "1.0.0"
        assert_same_release(release_rows(release), clean)
        assert not server.errors, server.errors
    finally:
        server.stop()


def test_budget_cap_stops_cleanly_and_a_higher_cap_finishes_the_run(clean, tmp_path):
    server = LlmServer(models=[MODEL], responder=Plausible(reject_rate=REJECT_RATE)).start()
    try:
        cap = ledger_tokens(clean.summary["usage"]) // 3
        data = small_config(
            tmp_path / "outputs", server.base_url, {"llm": {"budget": {"max_tokens": cap}}}
        )
        config = write_toml(data, tmp_path / "run.toml")
        run_id = build_config(data).resolved_run_id()
        stopped = run_cli("run", "--config", str(config))
        assert stopped.returncode == 2, stopped.stderr[-3000:]
        last = stopped.stderr.strip().splitlines()[-1]  # Prefect logs the flow's traceback
        assert last.startswith("error: token budget reached") and "resume it" in last, last
        assert not (tmp_path / "outputs" / "releases").exists()
        received = len(server.requests)

        more = f"llm.budget.max_tokens={cap * 10}"
        resumed = run_cli("run", "--config", str(config), "--resume", run_id, "--set", more)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert len(server.requests) > received
        release = tmp_path / "outputs" / "releases" / "small" / "1.0.0"
        assert_same_release(release_rows(release), clean)
    finally:
        server.stop()


def rows(ids: list[str]) -> pa.Table:
    return pa.table({"item_id": ids})


def test_stage_reads_only_the_shards_of_its_current_plan(tmp_path) -> None:
    store = RunStore.open(tmp_path, "run-1")
    for number, ids in enumerate([["a", "b"], ["c", "d"], ["e"]]):
        store.write_shard("stage", number, f"fp{number}", {"table": rows(ids)}, {"accepted": 1})
    assert store.read_part("stage").num_rows == 5  # no plan recorded: every committed shard
    store.plan_stage("stage", 2)  # a resumed attempt with fewer shards
    assert store.read_part("stage")["item_id"].to_pylist() == ["a", "b", "c", "d"]
    assert len(store.shard_stats("stage")) == 2
    assert store.read_part("stage", shards=range(1))["item_id"].to_pylist() == ["a", "b"]
    assert store.read_part("stage", shards=range(0)) is None
    store.plan_stage("stage", 3)  # the stale shard was kept, not deleted
    assert store.read_part("stage").num_rows == 5


def test_resume_with_fewer_shards_ignores_the_earlier_attempts_higher_shards(
    prefect_harness, llm_server, make_llm_config
):
    llm_server.responder = Plausible()
    base = {"seed": 5, "shard_size": 2, "run_id": "shrunk"}
    personas_flow(make_llm_config({**base, "personas": {"census_count": 6}}))
    smaller = make_llm_config({**base, "personas": {"census_count": 2}})
    stats = personas_flow(smaller)
    store = RunStore.open(smaller.output_dir, "shrunk")
    assert len(list((store.root / "personas").glob("shard-*.json"))) == 3  # stale ones stay
    assert store.read_part("personas").num_rows == 2 == stats["accepted"]
    assert stats["shards"] == 1
