"""The console command: help for every subcommand, one-line errors with exit code 2."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest

CLI = [sys.executable, "-c", "from personafoundry.cli import main; main()"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [[], ["model"], ["run"], ["doctor"], ["model", "install"]])
def test_help_explains_every_subcommand(args):
    result = run_cli(*args, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_top_level_help_lists_subcommands():
    out = run_cli("--help").stdout
    panel = out[out.index("Commands"):]  # the command rows, not the description text
    listed = re.findall(r"^\W*(\w+)\s{2,}\S", panel, re.M)
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
