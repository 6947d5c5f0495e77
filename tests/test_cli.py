"""The console command: help for every subcommand, one-line errors with exit code 2,
and how `run --resume` finds a run and which config it resumes with."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pipeline_runs import small_config, write_toml
from plausible import Plausible

from personafoundry.config import build_config
from personafoundry.paths import PROJECT_ROOT

CLI = [sys.executable, "-c", "from personafoundry.cli import main; main()"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}  # `-c` from another cwd
    env.pop("OPENAI_BASE_URL", None)
    return subprocess.run(
        [*CLI, *args], check=False, capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


@pytest.mark.parametrize("args", [[], ["model"], ["run"], ["doctor"], ["model", "install"]])
def test_help_explains_every_subcommand(args):
    result = run_cli(*args, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_top_level_help_lists_subcommands():
    out = run_cli("--help").stdout
    panel = out[out.index("Commands") :]  # the command rows, not the description text
    listed = re.findall(r"^\W*(\w+)\s{2,}\S", panel, re.MULTILINE)
    assert {"run", "model", "doctor", "release", "query", "shell"} <= set(listed), listed


def test_config_error_is_one_red_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[dedup]\nthreshhold = 0.5\n")
    result = run_cli("run", "--config", str(bad))
    assert result.returncode == 2
    assert "dedup.threshhold: unknown key" in result.stderr and str(bad) in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "run", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_doctor_reports_versions_and_unreachable_endpoint():
    result = run_cli("doctor", "--set", 'llm.generator.base_url="http://127.0.0.1:9/v1"')
    assert result.returncode == 0, result.stderr
    assert "prefect" in result.stdout and "NOT reachable" in result.stdout
    assert "prefect api" in result.stdout


def test_entry_point_sets_our_logger_to_info():
    from personafoundry import settings

    logging.getLogger("personafoundry").setLevel(logging.WARNING)
    settings.configure()
    assert logging.getLogger("personafoundry").level == logging.INFO
    import os

    assert "personafoundry" in os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"]


def test_release_cut_refuses_a_run_without_tables(tmp_path):
    run = tmp_path / "runs" / "run-empty"
    run.mkdir(parents=True)
    result = run_cli("release", "cut", "--name", "x", "--version", "1.0.0", "--from", str(run))
    assert result.returncode == 2 and "has no finished tables" in result.stderr
    assert not (tmp_path / "releases").exists()


def record_run(output_dir: Path, data: dict[str, Any]) -> str:
    """A run folder with the `config.json` record `flows/pipeline.py` writes; its run id."""
    cfg = build_config(data)
    run_dir = output_dir / "runs" / cfg.resolved_run_id()
    run_dir.mkdir(parents=True)
    record = {"sha256": cfg.config_hash(), "config": cfg.model_dump(mode="json", by_alias=True)}
    (run_dir / "config.json").write_text(json.dumps(record))
    return cfg.resolved_run_id()


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_resume_of_an_unknown_run_names_the_path_and_the_nearest_run_ids(tmp_path):
    for run_id in ("run-3f2a9c1b7d04", "run-000000000000", "nightly-20240101"):
        (tmp_path / "outputs" / "runs" / run_id).mkdir(parents=True)
    # no --config: the default config's output_dir ("outputs"), relative to the cwd
    line = error_line(run_cli("run", "--resume", "run-3f2a9c1b7d40", cwd=tmp_path))
    assert "run run-3f2a9c1b7d40 not found at outputs/runs/run-3f2a9c1b7d40" in line
    assert "nearest run ids: run-3f2a9c1b7d04, " in line and "(all 3: ls outputs/runs)" in line
    assert not (tmp_path / "outputs" / "runs" / "run-3f2a9c1b7d40").exists()  # nothing started


def test_resume_looks_in_the_output_dir_of_set_and_says_when_it_holds_no_runs(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    line = error_line(run_cli("run", "--resume", "run-1", "--set", f"output_dir={elsewhere}"))
    assert f"{elsewhere / 'runs'} holds no runs" in line and "--config" in line


@pytest.mark.parametrize("use_config", [False, True])
def test_resume_refuses_config_changes_that_would_change_checkpointed_rows(tmp_path, use_config):
    data = small_config(tmp_path / "outputs", "http://127.0.0.1:9/v1")
    run_id = record_run(tmp_path / "outputs", data)
    changes = ["--set", "seed=12", "--set", "converse.max_rounds=3"]
    if use_config:
        config = write_toml({**data, "seed": 12}, tmp_path / "run.toml")
        changes = ["--config", str(config), "--set", "converse.max_rounds=3"]
    else:
        changes += ["--set", f"output_dir={tmp_path / 'outputs'}"]
    line = error_line(run_cli("run", "--resume", run_id, *changes))
    assert f"run {run_id} at {tmp_path / 'outputs' / 'runs' / run_id}" in line
    assert "converse.max_rounds (2 -> 3), seed (11 -> 12)" in line
    assert "resume without those changes, or start a new run without --resume" in line


@pytest.mark.parametrize("use_config", [False, True])
def test_resume_uses_the_recorded_config_and_lists_the_changes_it_allows(
    tmp_path, llm_server, use_config
):
    llm_server.responder = Plausible()
    data = small_config(tmp_path / "outputs", llm_server.base_url)
    run_id = record_run(tmp_path / "outputs", data)
    allowed = ["--set", "llm.budget.max_tokens=5000", "--set", "release.version=1.0.1"]
    where = ["--set", f"output_dir={tmp_path / 'outputs'}"]
    if use_config:
        where = ["--config", str(write_toml(data, tmp_path / "run.toml"))]
    # --estimate: the config is resolved exactly as for a run, then a small preview is priced
    result = run_cli("run", "--resume", run_id, *where, *allowed, "--estimate")
    assert result.returncode == 0, result.stderr
    source = f"--config {tmp_path / 'run.toml'}" if use_config else "its recorded config.json"
    assert (
        f"resuming {run_id} from {tmp_path / 'outputs' / 'runs' / run_id} with {source} "
        "(changed: llm.budget.max_tokens (null -> 5000), release.version "
        '("1.0.0" -> "1.0.1"))'
    ) in result.stderr
    estimate = json.loads(result.stdout)
    assert estimate["run_id"] == run_id and estimate["budget"]["max_tokens"] == 5000
    assert llm_server.requests  # the recorded endpoint, not the default config's model


def test_resume_without_config_needs_a_recorded_config(tmp_path):
    (tmp_path / "outputs" / "runs" / "run-1").mkdir(parents=True)
    line = error_line(run_cli("run", "--resume", "run-1", cwd=tmp_path))
    assert "run run-1 has no recorded config at outputs/runs/run-1/config.json" in line
    assert "pass the config it was started with as --config" in line
