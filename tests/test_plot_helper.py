"""The plot helper process: the same report plots, whoever draws them, and no plot lost.

The figures are those of the session's clean pipeline release (`pipeline_runs.clean_run`),
recomputed from its tables; each test draws them into fresh folders and compares bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pipeline_runs import clean_run

from personafoundry import plot_helper
from personafoundry.report import compute_figures, release_context
from personafoundry.report_plots import PLOTS, render_plots


@pytest.fixture(scope="module")
def figures(prefect_harness, tmp_path_factory) -> dict[str, Any]:
    release = Path(clean_run(tmp_path_factory.mktemp("helper")).summary["release_path"])
    return compute_figures(release, release_context(release))


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.png")}


def test_plots_drawn_with_a_helper_equal_those_drawn_alone(
    figures: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alone = render_plots(figures, tmp_path / "alone")
    with (
        plot_helper.open_plot_helper() as running,
        caplog.at_level(logging.DEBUG, logger="personafoundry.report"),
    ):
        assert running
        shared = render_plots(figures, tmp_path / "shared")
    assert list(shared.items()) == list(alone.items())  # same plots, titles and order
    assert len(alone) >= 10 and set(alone) <= set(PLOTS)
    assert digests(tmp_path / "shared") == digests(tmp_path / "alone")
    drawn = [r.args for r in caplog.records if r.msg.startswith("report plots: %d of %d")]
    assert drawn and 0 < drawn[0][0] < drawn[0][1] == len(PLOTS)  # both processes drew


def test_a_dead_helper_costs_no_plot(figures: dict, tmp_path: Path) -> None:
    alone = render_plots(figures, tmp_path / "alone")
    with plot_helper.open_plot_helper():
        helper = plot_helper._HELPER[-1]
        helper.proc.kill()
        helper.proc.wait()
        shared = render_plots(figures, tmp_path / "shared")
        assert helper.broken  # found out on its first job, and not used again
    assert shared == alone
    assert digests(tmp_path / "shared") == digests(tmp_path / "alone")


def test_a_plot_the_helper_fails_on_is_drawn_here(figures: dict, tmp_path: Path) -> None:
    alone = render_plots(figures, tmp_path / "alone")
    first = next(iter(PLOTS))  # the feeder hands the helper the first plot
    with plot_helper.open_plot_helper():
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / first).mkdir()  # the helper cannot write a file there
        with pytest.raises(IsADirectoryError):  # nor can this process: the error surfaces
            render_plots(figures, tmp_path / "shared")
        (tmp_path / "shared" / first).rmdir()
        shared = render_plots(figures, tmp_path / "shared")  # the helper is still usable
    assert shared == alone


def test_without_a_helper_every_plot_is_drawn_here(figures: dict, tmp_path: Path) -> None:
    assert not plot_helper._HELPER
    titles = render_plots(figures, tmp_path)
    assert sorted(titles) == sorted(p.name for p in tmp_path.glob("*.png"))


HOLDER = """
import sys, time
from personafoundry import plot_helper
with plot_helper.open_plot_helper():
    print(plot_helper._HELPER[-1].proc.pid, flush=True)
    time.sleep(120)
"""


def test_a_helper_does_not_outlive_a_killed_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        os.kill(worker, 0)  # alive while the parent is
        parent.kill()  # SIGKILL: no cleanup code runs in the parent
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(worker):
            time.sleep(0.1)
        assert not _alive(worker), "the helper outlived its SIGKILLed parent"
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited, not yet reaped
            return stat.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


UNGUARDED = """
import json, pathlib, sys
from personafoundry import plot_helper
from personafoundry.report_plots import render_plots
out = pathlib.Path(sys.argv[1])
with open(out / "runs.txt", "a") as runs:  # one line per execution of this script
    runs.write("ran\\n")
with plot_helper.open_plot_helper():
    render_plots(json.loads((out / "figures.json").read_text()), out / "plots")
"""


def test_a_script_without_a_main_guard_runs_once(figures: dict, tmp_path: Path) -> None:
    """The helper never re-imports the caller's script (multiprocessing's spawn would)."""
    (tmp_path / "figures.json").write_text(json.dumps(figures, default=str))
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, timeout=300)
    assert (tmp_path / "runs.txt").read_text() == "ran\n"
    assert len(list((tmp_path / "plots").glob("*.png"))) >= 10
