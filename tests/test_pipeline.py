"""The pipeline flow end to end on real Prefect, Parquet and DuckDB, against the test server.

The test server plays a plausible LLM (`tests/plausible.py`), so the critics accept most
items and every table of the release has rows; a share of first drafts fails a critic on
purpose, so the reviews hold rejected rounds too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_runs import ID_COLUMNS, MODEL, CleanRun, clean_run

from flows.pipeline import pipeline_flow
from personafoundry.config import build_config
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
