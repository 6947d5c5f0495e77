"""Flow wiring on real Prefect: shard skip and progress lines, artifacts, deployments.

Stage logic is tested without Prefect in each stage's own tests; here only what the
flows add: checkpoints that make a rerun skip finished shards, a progress line per shard,
a Markdown artifact per stage, and `prefect.yaml` accepted by a Prefect server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from pipeline_runs import CleanRun, clean_run, cli_env, flow_artifacts
from plausible import Plausible

from flows.conversations import conversation_pairs
from flows.nightly import dated_config
from flows.personas import personas_flow, skeletons
from flows.release import release_flow
from flows.shards import sum_stats
from flows.validate import validate_flow
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig, build_config
from personafoundry.errors import ValidationFailed
from personafoundry.paths import PROJECT_ROOT
from personafoundry.summary import pairing_counts
from schemas import TABLES

STAGE_ARTIFACTS = ("personas-summary", "conversations-summary", "documents-summary",
                   "dedup-summary", "validate-summary", "release-summary")  # fmt: skip
PREFECT = [sys.executable, "-m", "prefect"]


@pytest.fixture(scope="module")
def clean(prefect_harness, tmp_path_factory) -> CleanRun:
    return clean_run(tmp_path_factory.mktemp("clean"))


PROGRESS = re.compile(
    r"^personas: shard (?P<shard>[1-3])/3 accepted=2 .*\| (?P<done>\d+)/6 items \(\d+%\), "
    r"[\d.]+ items/s, (ETA \d+s|done in \d+s)$"
)


def progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "personafoundry.flows"]


def test_rerun_skips_committed_shards_and_progress_counts_items_as_shards_finish(
    prefect_harness, llm_server, make_llm_config, caplog
):
    llm_server.responder = Plausible()
    cfg = make_llm_config({"seed": 5, "shard_size": 2, "personas": {"census_count": 6}})
    with caplog.at_level(logging.INFO, logger="personafoundry"):
        first = personas_flow(cfg)
    lines = [PROGRESS.match(line) for line in progress_lines(caplog)]
    assert all(lines) and len(lines) == 3, progress_lines(caplog)
    assert sorted(m["shard"] for m in lines) == ["1", "2", "3"]  # in the order they finished
    assert [m["done"] for m in lines] == ["2", "4", "6"] and "done in" in lines[-1].string
    paid = len(llm_server.requests)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="personafoundry"):
        again = personas_flow(cfg)
    skipped = [m for m in progress_lines(caplog) if "already done, skipped" in m]
    assert len(skipped) == 3 and len(llm_server.requests) == paid
    assert again["accepted"] == first["accepted"] == 6
    # a resume that finds shard 2 missing: the skipped shards' items count as done
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    (store.root / "personas" / "shard-0001.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="personafoundry"):
        personas_flow(cfg)
    resumed = [m for m in map(PROGRESS.match, progress_lines(caplog)) if m]
    assert [(m["shard"], m["done"]) for m in resumed] == [("2", "6")], progress_lines(caplog)


def test_changed_stage_settings_redo_shards_from_the_cache(
    prefect_harness, llm_server, make_llm_config
):
    llm_server.responder = Plausible()
    base = {"seed": 5, "shard_size": 2, "run_id": "fingerprints", "personas": {"census_count": 2}}
    personas_flow(make_llm_config(base))
    store = RunStore.open(make_llm_config(base).output_dir, "fingerprints")
    marker = store.root / "personas" / "shard-0000.json"
    before, paid = json.loads(marker.read_text())["fingerprint"], len(llm_server.requests)
    personas_flow(make_llm_config({**base, "personas": {"census_count": 2, "max_rounds": 3}}))
    assert json.loads(marker.read_text())["fingerprint"] != before  # recomputed, not reused
    assert len(llm_server.requests) == paid  # same prompts: every reply from the cache


def test_pairs_checkpoint_keeps_the_personas_left_without_partners(tmp_path) -> None:
    data = {"seed": 3, "output_dir": str(tmp_path), "personas": {"census_count": 3}}
    cfg = build_config({**data, "converse": {"per_persona": 3}})  # 3 personas: 2 partners each
    store = RunStore.open(tmp_path, "pairs")
    conversation_pairs(cfg, store, skeletons(cfg)[0])
    dropped = store.read_part("pairs", "dropped")
    assert dropped["reason"].to_pylist() == ["no_partner"] * 3
    assert pairing_counts(store.shard_stats("pairs")[0], dropped) == {
        "pairing.personas": 3, "pairing.pairs": 3, "pairing.short_personas": 3,
        "pairing.missing_conversations": 3,
    }  # fmt: skip


def test_stage_stats_add_counters_and_recompute_ratios_over_shards() -> None:
    shards = [
        {"requested": 4, "accepted": 3, "acceptance_rate": 0.75, "rounds_per_accepted": 1.0,
         "usage": {}},
        {"requested": 4, "accepted": 1, "acceptance_rate": 0.25, "rounds_per_accepted": 3.0,
         "usage": {}},
    ]  # fmt: skip
    total = sum_stats(shards)
    assert (total["requested"], total["accepted"], total["shards"]) == (8, 4, 2)
    assert total["acceptance_rate"] == 0.5 and total["rounds_per_accepted"] == 1.5


def test_every_stage_publishes_a_markdown_summary(clean: CleanRun) -> None:
    artifacts = flow_artifacts(clean.flow_run_id, STAGE_ARTIFACTS)
    assert set(artifacts) == set(STAGE_ARTIFACTS)
    personas = artifacts["personas-summary"]
    assert "| accepted |" in personas and "## Critic experts" in personas
    assert "## LLM usage" in personas and "Max TVD" in personas  # tokens and calibration
    documents = artifacts["documents-summary"]
    assert "| coverage |" in documents and "| verified |" in documents  # fact coverage
    assert "## Acceptance by document type" in documents
    assert "| pairing.short_personas |" in artifacts["conversations-summary"]
    validate = artifacts["validate-summary"]  # per table passed/failed, not a dict dump
    assert validate.startswith("# validate: passed") and "{" not in validate
    assert "| personas | 6 | " in validate and "expectation " in validate
    release = artifacts["release-summary"]  # counters as a table, then the path
    assert "/releases/" in release and "| validate_ms |" in release and "{" not in release


def markdown_outline(text: str) -> tuple[list[str], list[list[list[str]]]]:
    """Headings and tables (rows of cell texts, header first) as a Markdown renderer sees them.

    CommonMark + GFM tables (markdown-it-py, which `rich` ships); a table row whose raw
    line has more or fewer cells than its header fails here (renderers pad or cut them).
    """
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    headings: list[str] = []
    tables: list[list[list[str]]] = []
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            headings.append(tokens[i + 1].content)
        elif token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            raw = lines[token.map[0]].strip().strip("|")
            tables[-1].append([])
            cells = len(re.split(r"(?<!\\)\|", raw))  # unescaped pipes
            assert len(tables[-1]) == 1 or cells == len(tables[-1][0]), f"ragged row: {raw}"
        elif token.type == "inline" and tokens[i - 1].type in ("th_open", "td_open"):
            tables[-1][-1].append(token.content)
    return headings, tables


def test_validate_and_release_summaries_are_readable_markdown(clean: CleanRun) -> None:
    artifacts = flow_artifacts(clean.flow_run_id, ("validate-summary", "release-summary"))
    headings, tables = markdown_outline(artifacts["validate-summary"])
    assert headings == ["validate: passed"] and len(tables) == 1
    header, *rows = tables[0]
    assert header == ["table", "rows", "passed", "failed", "by kind (passed/checks)"]
    assert {r[0] for r in rows} == set(TABLES) and all(r[3] == "0" for r in rows)
    headings, tables = markdown_outline(artifacts["release-summary"])
    assert headings == ["release"] and len(tables) == 1 and tables[0][0] == ["counter", "value"]
    counters = {name: int(value) for name, value in tables[0][1:]}  # numbers, not dict dumps
    assert counters["personas"] == 6 and counters["validation_reused"] == 1
    assert re.search(r"^Published at `[^`]+/releases/small/1\.0\.\d`\.$",
                     artifacts["release-summary"], re.MULTILINE)  # fmt: skip


def test_pipeline_validates_once_and_the_release_reuses_that_report(clean: CleanRun) -> None:
    store = RunStore(Path(clean.cfg.output_dir) / "runs" / clean.summary["run_id"])
    saved = store.read_json("validation.json")
    release = Path(clean.summary["release_path"])
    manifest = json.loads((release / "manifest.json").read_text())
    assert saved["passed"] and manifest["validation"]["reused"] is True
    assert manifest["validation"]["fingerprint"] == saved["fingerprint"]
    assert json.loads((release / "validation/results.json").read_text()) == saved


def tampered_copy(clean: CleanRun, tmp_path: Path) -> tuple[RunStore, RunConfig]:
    """The clean run's folder copied under `tmp_path`, one persona's age set to 500."""
    run_id = clean.summary["run_id"]
    shutil.copytree(Path(clean.cfg.output_dir) / "runs" / run_id, tmp_path / "runs" / run_id)
    store = RunStore(tmp_path / "runs" / run_id)
    personas = store.read_part("personas_dedup")
    ages = [500, *personas["age"].to_pylist()[1:]]
    where = personas.schema.get_field_index("age")
    bad = personas.set_column(where, "age", pa.array(ages, personas["age"].type))
    store.write_shard("personas_dedup", 0, "tampered", {"table": bad}, {})
    data = {**clean.cfg.model_dump(mode="json", by_alias=True), "run_id": run_id}
    return store, build_config({**data, "output_dir": str(tmp_path)}, "tampered")


def test_a_table_changed_after_validation_is_validated_again_and_refused(clean, tmp_path):
    store, cfg = tampered_copy(clean, tmp_path)
    assert store.read_json("validation.json")["passed"] is True  # of the tables before
    with pytest.raises(ValidationFailed, match=r"table personas: .*\(age\) failed on 1 of 6"):
        release_flow(cfg, reuse_validation=True)
    assert not (tmp_path / "releases").exists()


def test_failed_validation_stops_the_run_with_a_readable_summary(clean: CleanRun, tmp_path):
    store, cfg = tampered_copy(clean, tmp_path)
    state = validate_flow(cfg, return_state=True)
    with pytest.raises(ValidationFailed, match="table personas"):
        state.result()
    assert store.read_json("validation.json")["passed"] is False
    flow_run = state.state_details.flow_run_id
    summary = flow_artifacts(flow_run, ("validate-summary",))["validate-summary"]
    assert summary.startswith("# validate: FAILED") and "(age) failed on 1 of 6 rows" in summary


def test_nightly_run_is_dated_seed_run_id_and_version() -> None:
    cfg = build_config({"release": {"name": "nightly", "version": "0.3.0"}})
    dated = dated_config(cfg, "2026-01-31")
    assert (dated.seed, dated.run_id, dated.release.version) == (20260131, "nightly-2026-01-31",
                                                                  "0.3.20260131")  # fmt: skip
    assert dated_config(cfg, "2026-02-01").resolved_run_id() != dated.resolved_run_id()


def test_prefect_yaml_deploys_to_a_prefect_server(prefect_harness) -> None:
    env = {**cli_env(), "PERSONAFOUNDRY_CHECKOUT": str(PROJECT_ROOT)}
    pool = subprocess.run([*PREFECT, "work-pool", "create", "personafoundry", "--type", "process"],
                          env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run([*PREFECT, "--no-prompt", "deploy", "--all"], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    deployments = read_deployments()
    assert set(deployments) == {"personafoundry-nightly/nightly",
                                "personafoundry-release/cut-release",
                                "personafoundry-pipeline/demo"}  # fmt: skip
    nightly = deployments["personafoundry-nightly/nightly"]
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]
    assert nightly.pull_steps[0]["prefect.deployments.steps.set_working_directory"] == {
        "directory": str(PROJECT_ROOT)
    }
    for name, dep in deployments.items():  # every parameter set is a valid run config
        assert isinstance(build_config(dep.parameters["cfg"], name), RunConfig)


def read_deployments() -> dict:
    from prefect.client.orchestration import get_client

    async def go() -> dict:
        async with get_client() as client:
            found = await client.read_deployments()
            flows = {f.id: f.name for f in await client.read_flows()}
        return {f"{flows[d.flow_id]}/{d.name}": d for d in found}

    return asyncio.run(go())


def test_pairing_is_the_same_in_every_process(clean: CleanRun, tmp_path: Path) -> None:
    script = (
        "import sys, json; from personafoundry.checkpoint import RunStore; "
        "from personafoundry.config import ConverseConfig; "
        "from personafoundry.pairing import pair_personas; from pathlib import Path; "
        "p = RunStore(Path(sys.argv[1])).read_latest('personas_dedup', 'personas'); "
        "cfg = ConverseConfig.model_validate(json.loads(sys.argv[2])); "
        "print(pair_personas(p, cfg, rng_seed=11).table.column('conversation_id').to_pylist())"
    )
    root = str(Path(clean.cfg.output_dir) / "runs" / clean.summary["run_id"])
    converse = clean.cfg.converse.model_dump_json()
    outs = []
    for hash_seed in ("1", "2", "3"):
        env = {**cli_env(), "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", script, root, converse], env=env,
                              capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
        outs.append(done.stdout)
    assert outs[0] == outs[1] == outs[2]
