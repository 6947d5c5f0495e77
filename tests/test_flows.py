"""Flow wiring on real Prefect: shard skip and progress lines, artifacts, deployments.

Stage logic is tested without Prefect in each stage's own tests; here only what the
flows add: checkpoints that make a rerun skip finished shards, a progress line per shard,
a Markdown artifact per stage, and `prefect.yaml` accepted by a Prefect server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_runs import CleanRun, clean_run, cli_env
from plausible import Plausible

from flows.nightly import dated_config
from flows.personas import personas_flow
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig, build_config
from personafoundry.paths import PROJECT_ROOT

STAGE_ARTIFACTS = ("personas-summary", "conversations-summary", "documents-summary",
                   "dedup-summary", "release-summary")  # fmt: skip
PREFECT = [sys.executable, "-m", "prefect"]


@pytest.fixture(scope="module")
def clean(prefect_harness, tmp_path_factory) -> CleanRun:
    return clean_run(tmp_path_factory.mktemp("clean"))


def test_rerun_skips_committed_shards_and_each_shard_logs_progress(
    prefect_harness, llm_server, make_llm_config, caplog
):
    llm_server.responder = Plausible()
    cfg = make_llm_config({"seed": 5, "shard_size": 2, "personas": {"census_count": 4}})
    with caplog.at_level(logging.INFO, logger="personafoundry"):
        first = personas_flow(cfg)
    progress = [r.getMessage() for r in caplog.records if r.name == "personafoundry.flows"]
    assert progress[0].startswith("personas: shard 1/2 accepted=2") and "ETA" in progress[0]
    assert progress[1].startswith("personas: shard 2/2 accepted=2"), progress
    paid = len(llm_server.requests)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="personafoundry"):
        again = personas_flow(cfg)
    skipped = [r.getMessage() for r in caplog.records if "already done, skipped" in r.getMessage()]
    assert len(skipped) == 2 and len(llm_server.requests) == paid
    assert again["accepted"] == first["accepted"] == 4


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


def read_artifacts(keys: tuple[str, ...]) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def go() -> dict[str, str]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys)))
            )
        return {a.key: str(a.data) for a in found}

    return asyncio.run(go())


def test_every_stage_publishes_a_markdown_summary(clean: CleanRun) -> None:
    artifacts = read_artifacts(STAGE_ARTIFACTS)
    assert set(artifacts) == set(STAGE_ARTIFACTS)
    personas = artifacts["personas-summary"]
    assert "| accepted |" in personas and "## Critic experts" in personas
    assert "## LLM usage" in personas and "Max TVD" in personas  # tokens and calibration
    assert "| coverage |" in artifacts["documents-summary"]
    assert (
        "release" in artifacts["release-summary"] and "/releases/" in artifacts["release-summary"]
    )


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
