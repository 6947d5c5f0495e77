"""A second process that draws report plots next to this one, opened for a pipeline run.

Why: the release's report draws a dozen matplotlib plots (about 3 s of CPU, under the GIL)
after every other stage has finished, so nothing overlaps them. A helper process started
while the LLM stages wait on the network draws about half of them at the same time as
this process draws the rest (measured on the pipeline benchmark's release: 3.0 s -> 1.7 s).

Decisions:
- Only the pipeline opens a helper (`open_plot_helper`), early: starting one costs about
  1 s of CPU (a new interpreter importing matplotlib), which pays off only off the
  critical path. Without an open helper, plots are drawn in this process as before.
- The helper is `python -m personafoundry.plot_helper`, fed pickled jobs one at a time
  over its stdin, not a `multiprocessing` worker: `spawn` re-imports the parent's main
  script in the child, so a script calling the pipeline without an
  `if __name__ == "__main__"` guard would run it a second time there; `fork` is unsafe in
  a process that runs threads (Prefect's, the shards').
- Work stealing: a feeder thread hands the helper plots from the front of the list, one
  at a time, while this process draws from the back, so neither idles. Who drew a plot
  changes nothing: the same code draws the same PNG bytes in either process.
- A helper that fails (cannot start, crashes, is killed, stalls past HELPER_TIMEOUT_S)
  costs time, never plots: whatever it did not deliver is drawn here, and it is not used
  again. A plot function that raises raises here too. The helper exits when its stdin
  closes, so it never outlives this process, even one killed with SIGKILL.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger("personafoundry.report")
HELPER_TIMEOUT_S = 120.0  # one plot; the slowest takes about 1 s
Plots = dict[str, Callable[[dict[str, Any], Path], str | None]]
_HELPER: list[_Helper] = []  # the open helper, if any (at most one)
_LOCK = threading.Lock()


class HelperGone(Exception):
    """The helper process can no longer draw (dead, stalled, or its pipe broke)."""


def _send(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(size))


class _Helper:
    """The helper process and the lock that gives it one job at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "personafoundry.plot_helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.lock = threading.Lock()
        self.broken = False

    def draw(self, name: str, figures: dict[str, Any], path: Path) -> str | None:
        """The title of plot `name` drawn by the helper into `path`; `HelperGone` if not."""
        with self.lock:
            if self.broken:
                raise HelperGone("an earlier job failed")
            try:
                _send(self.proc.stdin, (name, figures, str(path)))
                ready, _, _ = select.select([self.proc.stdout], [], [], HELPER_TIMEOUT_S)
                if not ready:
                    raise TimeoutError(f"no reply in {HELPER_TIMEOUT_S:.0f} s")
                ok, value = _receive(self.proc.stdout)
            except (OSError, EOFError, TimeoutError, pickle.UnpicklingError) as err:
                self.broken = True
                self.proc.kill()
                raise HelperGone(repr(err)) from None
        if not ok:
            raise HelperGone(f"the helper failed on {name}: {value}")
        return value

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # the helper's end-of-input: it exits
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


@contextmanager
def open_plot_helper() -> Iterator[bool]:
    """Start a helper process for this block; yields whether one is running."""
    helper = None
    try:
        helper = _Helper()
    except OSError as err:
        log.info("report plots: no helper process (%s); drawing in this process", err)
    if helper is None:
        yield False
        return
    with _LOCK:
        _HELPER.append(helper)
    try:
        yield True
    finally:
        with _LOCK:
            _HELPER.remove(helper)
        helper.close()


def draw_plots(plots: Plots, figures: dict[str, Any], out_dir: Path) -> dict[str, str | None]:
    """Draw every plot into `out_dir`, shared with the helper if one is open.

    Returns `{file name: title or None}` in the order of `plots`.
    """
    with _LOCK:
        helper = _HELPER[-1] if _HELPER else None
    left, titles, helped = deque(plots), {}, []
    lock, stop = threading.Lock(), threading.Event()

    def take(front: bool) -> str | None:
        with lock:
            return (left.popleft() if front else left.pop()) if left else None

    def feed() -> None:
        while not stop.is_set() and (name := take(front=True)) is not None:
            try:
                titles[name] = helper.draw(name, figures, out_dir / name)
                helped.append(name)
            except HelperGone as err:
                log.warning("report plots: helper did not draw %s (%s); drawing here", name, err)
                with lock:
                    left.appendleft(name)
                return

    feeder = threading.Thread(target=feed, name="plot-feeder", daemon=True)
    if helper is not None:
        feeder.start()
    try:
        while (name := take(front=False)) is not None:
            titles[name] = plots[name](figures, out_dir / name)
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join()  # its plot in progress ends before the caller moves on
    for name in list(left):  # given back by a failing helper after this loop had finished
        titles[name] = plots[name](figures, out_dir / name)
    log.debug("report plots: %d of %d drawn by the helper process", len(helped), len(plots))
    return {name: titles[name] for name in plots}


def _serve() -> None:
    """The helper: draw each job read from stdin, reply on stdout, exit at end of input."""
    from personafoundry.report_plots import PLOTS  # matplotlib loads once, at start

    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the reply stream
    while True:
        try:
            name, figures, path = _receive(source)
        except EOFError:
            return
        try:
            reply = (True, PLOTS[name](figures, Path(path)))
        except Exception as err:  # noqa: BLE001 - reported to the parent, which redraws
            reply = (False, repr(err))
        _send(sink, reply)


if __name__ == "__main__":
    _serve()
    os._exit(0)
