"""The pipeline flow end to end on real Prefect, real Parquet and DuckDB, against the test server."""

from __future__ import annotations

from pathlib import Path

import pytest

from personafoundry.release import query_release

SMALL = {
    "seed": 11,
    "shard_size": 3,
    "personas": {"census_count": 5},
    "converse": {"per_persona": 1, "max_rounds": 2},
    "documents": {"per_persona": 1, "max_rounds": 2},
    "validate": {"conditioned": True},  # 5 personas cannot match the census marginals
    "release": {"name": "pipeline-test", "version": "1.0.0"},
}


@pytest.fixture
def small_config(make_llm_config):
    return make_llm_config(SMALL)


def test_pipeline_writes_a_release_that_duckdb_reads(prefect_harness, llm_server, small_config):
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(small_config)
    release = Path(summary["release_path"])
    assert (release / "manifest.json").exists() and (release / "README.md").exists()
    personas = query_release(release, "SELECT count(*) AS n FROM personas").column("n")[0].as_py()
    assert personas >= 1
    answer = query_release(release, summary["demo_query"])
    assert answer.num_rows == personas
    reviews = query_release(release, "SELECT count(*) AS n FROM reviews").column("n")[0].as_py()
    assert reviews > 0
    assert summary["usage"] and all(row["requests"] > 0 for row in summary["usage"])


def test_rerun_of_the_same_config_pays_for_nothing(prefect_harness, llm_server, make_llm_config):
    from flows.pipeline import pipeline_flow

    cfg = make_llm_config({**SMALL, "release": {"name": "rerun-test", "version": "1.0.0"}})
    pipeline_flow(cfg)
    paid = len(llm_server.requests)
    assert llm_server.count_duplicates() == 0
    rerun = make_llm_config({**SMALL, "release": {"name": "rerun-test", "version": "1.0.1"}})
    # A new version name changes the config hash, hence the run id: only the cache saves us.
    pipeline_flow(rerun)
    assert len(llm_server.requests) == paid
