"""A second process that draws report plots next to this one, opened for a pipeline run.

Why: the release's report draws a dozen matplotlib plots (about 3 s of CPU, under the GIL)
after every other stage has finished, so nothing overlaps them. A helper process started
while the LLM stages wait on the network draws about half of them at the same time as
this process draws the rest (measured on the pipeline benchmark's release: 3.0 s -> 1.7 s).

Decisions:
- Only the pipeline opens a helper (`open_plot_helper`), early: starting one costs about
  1 s of CPU (a new interpreter importing matplotlib), which pays off only off the
  critical path. Without an open helper, plots are drawn in this process as before.
- `concurrent.futures.ProcessPoolExecutor` with one `spawn` worker: no fork of a process
  that runs threads (Prefect's, the shards'), and a worker that dies is reported as a
  broken pool rather than hanging.
- Work stealing: every plot is submitted to the helper; this process walks the list from
  the end and draws each plot it can still cancel. Neither side idles, and who drew which
  plot changes nothing: the same code draws the same PNG bytes in either process.
- A helper that fails (cannot start, crashed, killed) costs time, never plots: whatever
  it did not deliver is drawn here. A helper whose parent dies (even by SIGKILL) exits
  within a second: no orphan process is left behind.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("personafoundry.report")
_HELPER: list[ProcessPoolExecutor] = []  # the open helper, if any (at most one)
_LOCK = threading.Lock()


def _start_worker(parent: int) -> None:
    """In the helper: exit when the parent process is gone, then load matplotlib once.

    The executor's queues keep both pipe ends open in the worker, so it would not notice a
    parent killed with SIGKILL; a daemon thread polls the parent pid instead (a reparented
    worker sees another one) and ends the worker within a second.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    import personafoundry.report_plots  # noqa: F401


def _draw(name: str, figures: dict[str, Any], path: str) -> str | None:
    from personafoundry.report_plots import PLOTS

    return PLOTS[name](figures, Path(path))


@contextmanager
def open_plot_helper() -> Iterator[bool]:
    """Start a helper process for this block; yields whether one is running."""
    try:
        pool = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(os.getpid(),),
        )  # fmt: skip
        pool.submit(int)  # starts the worker now, so its imports run in the background
    except (OSError, RuntimeError, AssertionError) as err:  # e.g. a daemon process
        log.info("report plots: no helper process (%s); drawing in this process", err)
        yield False
        return
    with _LOCK:
        _HELPER.append(pool)
    try:
        yield True
    finally:
        with _LOCK:
            _HELPER.remove(pool)
        pool.shutdown(wait=False, cancel_futures=True)


def draw_plots(
    plots: dict[str, Callable[[dict[str, Any], Path], str | None]],
    figures: dict[str, Any],
    out_dir: Path,
) -> dict[str, str | None]:
    """Draw every plot into `out_dir`, shared with the helper if one is open.

    Returns `{file name: title or None}` in the order of `plots`.
    """
    with _LOCK:
        pool = _HELPER[-1] if _HELPER else None
    futures: dict[str, Future] = {}
    if pool is not None:
        try:
            futures = {name: pool.submit(_draw, name, figures, str(out_dir / name))
                       for name in plots}  # fmt: skip
        except RuntimeError as err:  # broken or shut down: draw everything here
            log.warning("report plots: helper unavailable (%s); drawing here", err)
            futures = {}
    titles: dict[str, str | None] = {}
    for name in reversed(plots):
        future = futures.get(name)
        if future is None or future.cancel():
            titles[name] = plots[name](figures, out_dir / name)
    helped = 0
    for name, future in futures.items():
        if name in titles:
            continue
        try:
            titles[name] = future.result()
            helped += 1
        except Exception as err:  # noqa: BLE001 - any helper failure: draw it here instead
            log.warning("report plots: helper failed on %s (%r); drawing here", name, err)
            titles[name] = plots[name](figures, out_dir / name)
    log.debug("report plots: %d of %d drawn by the helper process", helped, len(plots))
    return {name: titles[name] for name in plots}
