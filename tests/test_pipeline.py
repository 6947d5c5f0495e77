"""The pipeline flow end to end on real Prefect, Parquet and DuckDB, against the test server.

The test server plays a plausible LLM (`tests/plausible.py`), so the critics accept most
items and every table of the release has rows; a share of first drafts fails a critic on
purpose, so the reviews hold rejected rounds too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_runs import ID_COLUMNS, MODEL, CleanRun, clean_run
from plausible import schema_of

from flows.pipeline import pipeline_flow
from personafoundry.checkpoint import RunStore
from personafoundry.config import build_config
from personafoundry.exemplar_pool import shard_generations
from personafoundry.release import query_release

TABLES_WITH_ROWS = ("personas", "conversations", "documents", "probes", "reviews")


@pytest.fixture(scope="module")
def clean(prefect_harness, tmp_path_factory) -> CleanRun:
    return clean_run(tmp_path_factory.mktemp("clean"))


def count(release: Path, sql: str) -> int:
    return query_release(release, sql).column(0)[0].as_py()


def test_pipeline_release_has_accepted_rows_in_every_table(clean: CleanRun) -> None:
    release = Path(clean.summary["release_path"])
    assert (release / "manifest.json").exists() and (release / "README.md").exists()
    for table in TABLES_WITH_ROWS:
        assert count(release, f"SELECT count(*) FROM {table}") > 0, table
        ids = [r[ID_COLUMNS[table]] for r in clean.rows[table]]
        assert len(ids) == len(set(ids)), f"duplicate ids in {table}"
    stats = clean.summary["stats"]
    assert stats["personas"]["accepted"] == 6 and stats["conversations"]["accepted"] >= 5
    assert stats["documents"]["accepted"] >= 10
    talk = stats["conversations"]  # no target: one conversation requested per planned pair
    assert talk["requested"] == talk["pairing.pairs"] == talk["started"]
    assert talk["shortfall"] == talk["requested"] - talk["accepted"] == talk["stopped.attempt_cap"]
    assert talk["unused_pairs"] == talk["stopped.out_of_pairs"] == 0


def test_demo_query_answers_one_row_per_persona(clean: CleanRun) -> None:
    release = Path(clean.summary["release_path"])
    answer = query_release(release, clean.summary["demo_query"]).to_pylist()
    assert len(answer) == count(release, "SELECT count(*) FROM personas")
    assert all(row["documents"] >= 1 and row["conversations"] >= 1 for row in answer)


def test_reviews_hold_accepted_and_rejected_rounds_of_every_kind(clean: CleanRun) -> None:
    release = Path(clean.summary["release_path"])
    kinds = query_release(
        release,
        "SELECT item_kind, bool_or(accepted) AS any_ok, bool_or(NOT passed) AS any_failed, "
        "max(round) AS rounds FROM reviews GROUP BY item_kind ORDER BY item_kind",
    ).to_pylist()
    assert [k["item_kind"] for k in kinds] == ["conversation", "document", "persona"]
    assert all(k["any_ok"] for k in kinds)
    assert all(k["any_failed"] and k["rounds"] == 2 for k in kinds), kinds  # revised drafts


def test_usage_is_recorded_and_the_server_saw_no_repeated_request(clean: CleanRun) -> None:
    usage = clean.summary["usage"]
    assert set(usage) == {f"generator/{MODEL}", f"critic/{MODEL}"}
    assert all(row["requests"] > 0 for row in usage.values())
    assert sum(row["requests"] for row in usage.values()) == clean.requests
    assert clean.server.count_duplicates() == 0


def test_rerun_of_the_same_config_pays_for_nothing(clean: CleanRun) -> None:
    # A new version changes the config hash, hence the run id: only the cache saves us.
    data = clean.cfg.model_dump(mode="json", by_alias=True)
    data["release"]["version"] = "1.0.1"
    summary = pipeline_flow(build_config(data, "rerun"))
    assert len(clean.server.requests) == clean.requests
    assert summary["run_id"] != clean.summary["run_id"]
    rerun = Path(summary["release_path"])
    assert count(rerun, "SELECT count(*) FROM documents") == len(clean.rows["documents"])
    # Version 1.0.1 was deduplicated against 1.0.0's shipped index: the same items are
    # carried over (not removed as duplicates of themselves) and the index grows with it.
    first = Path(clean.summary["release_path"])
    assert (first / "dedup_index.parquet").exists() and (rerun / "dedup_index.parquet").exists()
    assert count(rerun, "SELECT count(*) FROM personas") == len(clean.rows["personas"])


def run_store(clean: CleanRun) -> RunStore:
    return RunStore(Path(clean.cfg.output_dir) / "runs" / clean.summary["run_id"])


def test_later_conversation_shards_are_shown_accepted_conversations_of_earlier_ones(clean):
    store = run_store(clean)
    generations = shard_generations(clean.summary["stats"]["conversations"]["shards"])
    assert len(generations) >= 2
    first = store.read_part("conversations", shards=generations[0])
    texts = {t["text"] for row in first.to_pylist() for t in row["turns"]}
    saved = store.read_part("conversations", "exemplars", shards=generations[0])
    assert saved.num_rows > 0 and set(saved["exemplar_id"].to_pylist()) <= set(
        first["conversation_id"].to_pylist()
    )
    size = clean.cfg.shard_size
    later = store.read_part("pairs").slice(generations[1].start * size)
    scenarios = set(later["scenario"].to_pylist())
    shown = [
        r for r in clean.server.requests
        if schema_of(r)[0] == "OneCallReply"
        and any(s in r["messages"][-1]["content"] for s in scenarios)  # a later pair's draft
        and any(json.dumps(t, ensure_ascii=False)[1:-1] in m["content"]
                for m in r["messages"][1:-1] for t in texts)  # an earlier accepted turn
    ]  # fmt: skip
    assert shown, "no later draft request showed an accepted conversation of an earlier shard"


def test_run_folder_keeps_what_stages_drop_and_the_coverage_report(clean: CleanRun) -> None:
    store = run_store(clean)
    pairs = store.read_json("stats.json")["conversations"]
    assert pairs["pairing.pairs"] == store.read_part("pairs").num_rows
    short = store.read_part("pairs", "dropped")
    assert short is not None and pairs["pairing.short_personas"] == short.num_rows
    assert set(short.column_names) >= {"persona_id", "reason", "missing"}
    coverage = store.read_json("coverage.json")
    facts = coverage["facts"]
    assert facts["facts_total"] >= facts["planned"] >= facts["revealed"] >= facts["verified"] > 0
    documents = clean.summary["stats"]["documents"]
    by_type = coverage["by_type"]
    assert sum(r["planned"] for r in by_type) == documents["planned"]
    assert sum(r["accepted"] for r in by_type) == documents["accepted"]
    per_fact = store.read_part("coverage")
    assert per_fact.num_rows == facts["planned"]  # one row per planned fact, shards combined
    probes = store.read_part("probes", "dropped")
    assert probes is not None and probes.num_rows == clean.summary["stats"]["probes"]["dropped"]
    assert probes.num_rows == 0 or all(probes["reason"].to_pylist())
