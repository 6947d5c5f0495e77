"""Resume after a crash: SIGKILL in the middle of a stage, budget stops; nothing lost or repaid.

The pipeline runs in a child process (`personafoundry run`) against a test server that
lives in this process, so the server outlives the killed child and sees every request of
both the killed and the resumed run. Both runs use this session's Prefect server.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import threading
import time
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

log = logging.getLogger(__name__)
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
    """A run killed between two conversation shards resumes to the clean run's tables, and
    the test server never sees a request twice for the same cache key, except a request
    that was in flight at the kill, at most once more.

    Why that exception is the truthful limit: the client pays for (caches) a reply only once
    it has read it whole, and SIGKILL gives it no chance to finish. A request is therefore
    in one of three states at the kill, told apart by the cache and the server's spans:
    - answered and cached (its key is in the cache): paid, and it must never be sent again;
    - answered by the server but never cached (the reply was in transit or being parsed,
      `lost_at_kill`): unpaid from the client's view, so the resume asks again;
    - not answered yet (its server span had not ended, `in_flight_at_kill`): unpaid too.
    So: no cached key is sent again, each unpaid request at most once more, nothing else
    is duplicated (neither attempt sends a key twice), and the unanswered ones never exceed
    the client's concurrency cap (a request holds a slot until its reply is read).
    """
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
        with open(tmp_path / "killed.log", "w") as killed_log:
            child = subprocess.Popen([*CLI, "run", "--config", str(config)], env=cli_env(),
                                     cwd=PROJECT_ROOT, stdout=killed_log, stderr=killed_log)  # fmt: skip
            try:
                for _ in range(600):  # stop waiting as soon as the child ends on its own
                    if trip.reached.wait(timeout=1) or child.poll() is not None:
                        break
                assert trip.reached.is_set(), "the run never reached a second conversations shard"
                os.kill(child.pid, signal.SIGKILL)
                killed_at = time.monotonic()  # the killed child runs no code after this
            finally:
                child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL
        store = RunStore.open(tmp_path / "outputs", run_id)
        committed = len(store.shard_stats("conversations"))
        assert 0 < committed < clean.summary["stats"]["conversations"]["shards"], committed
        assert not (tmp_path / "outputs" / "releases").exists()
        paid_before = cached_keys(tmp_path / "outputs" / "cache" / "responses.sqlite")
        sent_before = [cache_key_of(p, server.base_url) for p in server.requests]
        assert len(set(sent_before)) == len(sent_before), "the killed run sent a key twice"
        assert paid_before <= set(sent_before)  # every cached reply was asked of this server
        unpaid = set(sent_before) - paid_before
        answered = answered_by(server, killed_at)
        assert len(paid_before) <= answered  # a reply is cached only after the server answered
        in_flight_at_kill, lost_at_kill = len(sent_before) - answered, answered - len(paid_before)
        cap = build_config(data).llm.generator.max_concurrency  # critic: same endpoint and cap
        assert in_flight_at_kill <= cap, (in_flight_at_kill, cap)

        resumed = run_cli("run", "--config", str(config), "--resume", run_id)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "already done, skipped" in resumed.stderr  # committed shards were not redone

        sent_after = [cache_key_of(p, server.base_url) for p in server.requests[len(sent_before) :]]
        assert [k for k in sent_after if k in paid_before] == [], "a paid request was sent again"
        assert len(set(sent_after)) == len(sent_after), "the resumed run sent a key twice"
        resent = [k for k in sent_after if k in unpaid]
        counts = {"resent": len(resent), "in_flight_at_kill": in_flight_at_kill,
                  "lost_at_kill": lost_at_kill, "unpaid": len(unpaid)}  # fmt: skip
        log.info("resume after SIGKILL: %s", counts)  # shown with -o log_cli=true
        assert server.count_duplicates() == len(resent), counts  # no other duplicate at all
        release = tmp_path / "outputs" / "releases" / "small" / "1.0.0"
        assert_same_release(release_rows(release), clean)
        assert not server.errors, server.errors
    finally:
        server.stop()


def answered_by(server: LlmServer, moment: float) -> int:
    """How many chat requests the server had finished answering by `moment` (monotonic).

    From the server's request spans (start, end of each handler; same clock, same process).
    """
    return sum(1 for _, end in server.spans() if end <= moment)


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

        # no --config: the run's recorded config, with the one change a resume may make here
        more = ["--set", f"llm.budget.max_tokens={cap * 10}"]
        where = ["--set", f"output_dir={tmp_path / 'outputs'}"]
        resumed = run_cli("run", "--resume", run_id, *where, *more)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert f"with its recorded config.json (changed: llm.budget.max_tokens ({cap} -> " in (
            resumed.stderr
        )
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
