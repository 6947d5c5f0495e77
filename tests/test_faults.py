"""Fault tolerance of a whole run against a misbehaving endpoint.

429 bursts with Retry-After, 5% of requests failing with 500, 1% hanging past the client
timeout, malformed HTTP bodies and cut-off JSON replies: the run completes and loses no
item. Replies that stay invalid after every re-ask become failed attempts in `reviews`
with their reason. An endpoint that is down for longer than the retry budget stops the run
with one clear line, and the run resumes once the endpoint is back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llm_server import LlmServer
from pipeline_runs import (
    MODEL,
    REJECT_RATE,
    CleanRun,
    clean_cli_run,
    clean_run,
    release_rows,
    run_cli,
    small_config,
    write_toml,
)  # fmt: skip
from plausible import Plausible, grab, prompt_of, schema_of, share

from flows.pipeline import pipeline_flow
from personafoundry.config import build_config

ITEM_TABLES = ("personas", "conversations", "documents", "probes")


@pytest.fixture(scope="module")
def clean(prefect_harness, tmp_path_factory) -> CleanRun:
    return clean_run(tmp_path_factory.mktemp("clean"))


class BrokenFirstDrafts:
    """Responder wrapper: for about half of the personas, every reply to the first-round
    draft request (the ask and both re-asks share its seed) is not JSON."""

    def __init__(self, inner: Plausible) -> None:
        self.inner, self.first_seed, self.broken = inner, {}, 0

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        if schema_of(payload)[0] == "PersonaDraft":
            name = grab(r"^- Name: (.*)$", prompt_of(payload)[1])
            first = self.first_seed.setdefault(name, payload.get("seed"))
            if share(0.5, "broken", name) and payload.get("seed") == first:
                self.broken += 1
                return {"content": "Sure! Here is the person you asked for:"}
        return self.inner(payload)


def ids(rows: dict[str, list[dict]], table: str) -> list[str]:
    key = {"personas": "persona_id", "conversations": "conversation_id",
           "documents": "document_id", "probes": "probe_id"}[table]  # fmt: skip
    return [r[key] for r in rows[table]]


def test_run_survives_rate_limits_errors_hangs_and_bad_replies(clean, tmp_path):
    broken = BrokenFirstDrafts(Plausible())  # no deliberate rejections: every item passes
    server = LlmServer(models=[MODEL], responder=broken).start()
    try:
        # A burst of 429s at the start (one per request in flight: max_concurrency is 4),
        # then one of each other fault for sure (the same 4 requests retrying, so none runs
        # out of retries), then random faults at the rates for the rest of the run.
        burst = [{"status": 429, "retry_after": 0.2}] * 4
        server.script([*burst, {"status": 500}, {"hang": True}, {"body": "{not json"},
                       {"truncate": True}])  # fmt: skip
        server.faults(rate_500=0.05, rate_hang=0.01, rate_body=0.02, rate_truncate=0.02,
                      retry_after=0.05, seed=5)  # fmt: skip
        cfg = build_config(small_config(tmp_path / "outputs", server.base_url), "faults")
        summary = pipeline_flow(cfg)
        outcomes = server.outcomes()
        for kind in ("status_429", "status_500", "hang", "body", "truncate"):
            assert outcomes[kind] > 0, (kind, outcomes)
        assert outcomes["status_500"] > 1  # the random ones too
        rows = release_rows(Path(summary["release_path"]))
        for table in ITEM_TABLES:  # nothing lost: the same items as the fault-free run
            assert ids(rows, table) == ids(clean.rows, table), table
            assert len(set(ids(rows, table))) == len(ids(rows, table)), table
        failed = [r for r in rows["reviews"] if r["expert"] == "generator"]
        assert broken.broken >= 3 and failed, "the broken first drafts left no failed attempt"
        assert all(r["score"] is None and not r["passed"] for r in failed)
        assert all("not valid JSON" in r["error"] for r in failed), failed[0]["error"]
        usage = summary["stats"]["personas"]["usage"]
        assert sum(u["retries"] for u in usage.values()) > 0
        assert sum(u["invalid_replies"] for u in usage.values()) > 0
        assert not server.errors, server.errors
    finally:
        server.stop()


@pytest.fixture(scope="module")
def clean_cli(prefect_harness, tmp_path_factory) -> CleanRun:
    return clean_cli_run(tmp_path_factory.mktemp("clean_cli"))


def test_endpoint_down_stops_with_one_clear_line_and_resumes(clean_cli, tmp_path):
    server = LlmServer(models=[MODEL], responder=Plausible(reject_rate=REJECT_RATE)).start()
    try:
        data = small_config(tmp_path / "outputs", server.base_url,
                            {"llm": {"generator": {"breaker_failures": 3}}})  # fmt: skip
        config = write_toml(data, tmp_path / "run.toml")
        run_id = build_config(data).resolved_run_id()
        server.faults(rate_503=1.0)  # down: every request fails, longer than any retry budget
        down = run_cli("run", "--config", str(config))
        assert down.returncode == 2, down.stderr[-3000:]
        last = down.stderr.strip().splitlines()[-1]
        assert last.startswith("error: endpoint") and "can be resumed" in last, last
        assert "Retry 1/2" not in down.stderr  # a stop is not retried as a transient error

        server.faults()  # back up
        resumed = run_cli("run", "--config", str(config), "--resume", run_id)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        rows = release_rows(tmp_path / "outputs" / "releases" / "small" / "1.0.0")
        for table, expected in clean_cli.rows.items():
            assert rows[table] == expected, table
    finally:
        server.stop()


def test_a_stop_in_both_parallel_stages_raises_one_error_telling_both(
    prefect_harness, tmp_path, monkeypatch
):
    """The endpoint goes down once the pairs are planned: the conversations (flow thread)
    and the documents (a task beside it) both stop; the raised stop also tells the
    documents' failure, after their shards have committed."""
    from flows import pipeline
    from personafoundry.errors import EndpointError

    server = LlmServer(models=[MODEL], responder=Plausible(reject_rate=REJECT_RATE)).start()
    plan = pipeline.conversation_pairs

    def plan_then_go_down(*args, **kwargs):
        pairs = plan(*args, **kwargs)
        server.faults(rate_503=1.0)
        return pairs

    monkeypatch.setattr(pipeline, "conversation_pairs", plan_then_go_down)
    try:
        data = small_config(tmp_path / "outputs", server.base_url,
                            {"llm": {"generator": {"breaker_failures": 3},
                                     "critic": {"breaker_failures": 3}}})  # fmt: skip
        with pytest.raises(EndpointError) as stop:
            pipeline.pipeline_flow(build_config(data, "both-stop"))
        notes = getattr(stop.value, "__notes__", [])
        assert any(n.startswith("The documents stage failed too") for n in notes), notes
    finally:
        server.stop()
