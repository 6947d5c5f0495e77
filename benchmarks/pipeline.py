"""End-to-end pipeline throughput on the test server with a fixed 1.0 s latency.

The whole `pipeline_flow` (personas, dedup, conversations, documents, dedup, probes,
validation, release) runs in this process on real Prefect (its temporary server, in a
private PREFECT_HOME), against the test server (tests/llm_server.py) in a child process
that answers every stage with the plausible responder (tests/plausible.py), so work is
accepted as a real run would be and the release has rows in every table.

efficiency = ideal time (requests x latency / concurrency) / wall time of the pipeline
flow, the gateway benchmark's definition; target >= 0.80 (orchestration, checkpointing,
dedup, validation and the release together may cost at most 20 %). `requests` are the
replies the server answered and the run paid for (the cache ledger; the server's own count
is reported too). The Prefect server's start-up is left out of the wall time and reported
as `prefect_startup_s`.

`prefect_overhead_ms_per_task`: N trivial task calls minus the same calls made directly,
timed inside one flow run on the same Prefect server, per task; it is the orchestration cost
per shard task.
`stages` gives each stage flow's wall time from Prefect's own run records.

    .venv/bin/python benchmarks/pipeline.py [--small] [--task-runner dask] [--shard-size N]
                                            [--keep DIR]

Prints one JSON object on stdout (logs go to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

FULL = {"personas": 500, "conversations": 500, "documents": 1000, "concurrency": 64}
SMALL = {"personas": 64, "conversations": 64, "documents": 128, "concurrency": 16}
TARGET = 0.80
OVERHEAD_TASKS = 200


def serve(latency: float, reject_rate: float) -> None:
    """Child process: the test server with the plausible responder, until stdin closes."""
    from llm_server import LlmServer
    from plausible import Plausible

    server = LlmServer(latency, models=["bench"], responder=Plausible(reject_rate)).start()
    print(json.dumps({"base_url": server.base_url}), flush=True)
    sys.stdin.read()
    server.stop()


def bench_config(base_url: str, out: Path, size: dict[str, int], args: argparse.Namespace):
    from personafoundry.config import build_config

    endpoint = {"base_url": base_url, "model": "bench", "dialect": "openai", "timeout_s": 60,
                "max_concurrency": size["concurrency"]}  # fmt: skip
    personas = size["personas"]
    data = {
        "seed": 5,
        "output_dir": str(out),
        "shard_size": args.shard_size,
        "llm": {
            "generator": endpoint,
            "critic": {**endpoint, "temperature": 0.0, "max_tokens": 300},
        },
        "personas": {"census_count": personas},
        # exactly this many accepted conversations (converse.target; reserve pairs unused)
        "converse": {"target": size["conversations"]},
        "documents": {"per_persona": round(size["documents"] / personas)},
        "validate": {"conditioned": personas < 200},  # the census gate needs 200 rows
        "release": {"name": "bench", "version": "1.0.0"},
        "orchestration": {"task_runner": args.task_runner},
    }
    if args.parallel_shards:
        data["orchestration"]["parallel_shards"] = args.parallel_shards
    return build_config(data, "benchmarks/pipeline.py")


def prefect_overhead_ms(n: int) -> float:
    """Per-task cost of Prefect: n trivial task calls minus n direct calls, in one flow run.

    Both loops are timed inside the same flow run, so the flow's own start and end (which
    vary by more than the whole difference) are not part of either figure.
    """
    from prefect import flow, task
    from prefect.cache_policies import NONE

    def noop(i: int) -> int:
        return i

    noop_task = task(noop, cache_policy=NONE, name="noop")

    @flow(name="bench-overhead")
    def calls(count: int) -> float:
        noop_task(-1)  # warm up: the task's registration
        t0 = time.perf_counter()
        for i in range(count):
            noop(i)
        direct = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(count):
            noop_task(i)
        return time.perf_counter() - t0 - direct

    return calls(n) * 1000 / n


def stage_walls(since: float) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Wall time per stage flow, and shard-task run times per stage, from Prefect's records."""
    from prefect.client.orchestration import get_client

    async def read() -> tuple[list, list]:
        async with get_client() as client:
            flow_runs, task_runs = await client.read_flow_runs(limit=200), []
            while page := await client.read_task_runs(limit=200, offset=len(task_runs)):
                task_runs += page  # the API serves at most 200 per call
            return flow_runs, task_runs

    flow_runs, task_runs = asyncio.run(read())
    names = {}
    walls: dict[str, float] = defaultdict(float)
    for run in flow_runs:
        if run.start_time and run.end_time and run.start_time.timestamp() >= since:
            names[run.id] = run.name
    flows = asyncio.run(_flow_names({r.flow_id for r in flow_runs}))
    for run in flow_runs:
        if run.id in names and run.end_time:
            name = flows[run.flow_id].removeprefix("personafoundry-")
            walls[name] += (run.end_time - run.start_time).total_seconds()
    shards: dict[str, list[float]] = defaultdict(list)
    for run in task_runs:
        if "-shard-" in run.name and run.start_time and run.start_time.timestamp() >= since:
            shards[run.name.split("-shard-")[0]].append(run.total_run_time.total_seconds())
    per_stage = {k: {"tasks": len(v), "mean_run_s": round(sum(v) / len(v), 3)}
                 for k, v in shards.items()}  # fmt: skip
    return {k: round(v, 2) for k, v in walls.items()}, per_stage


def wait_for_task_runs(prefix: str, count: int, timeout_s: float = 60.0) -> None:
    """Until the server has recorded `count` finished task runs named `prefix`-...

    Its ingestion of task run events lags; stopping the temporary server in the middle
    printed the recorder's cancelled flush as tracebacks after the JSON.
    """
    from prefect.client.orchestration import get_client

    async def finished() -> int:
        async with get_client() as client:
            runs: list = []
            while page := await client.read_task_runs(limit=200, offset=len(runs)):
                runs += page
        return sum(r.name.startswith(prefix) and bool(r.end_time) for r in runs)

    deadline = time.monotonic() + timeout_s
    while asyncio.run(finished()) < count and time.monotonic() < deadline:
        time.sleep(0.5)


async def _flow_names(ids: set) -> dict:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {i: (await client.read_flow(i)).name for i in ids}


class ThreadProfiles:
    """cProfile in every thread (shards run in worker threads); merged into one file."""

    def __init__(self) -> None:
        import cProfile

        self.profiles: list[cProfile.Profile] = []
        self._new = cProfile.Profile

    def _start(self, *_: Any) -> None:
        prof = self._new()
        self.profiles.append(prof)
        prof.enable()  # replaces this hook for the rest of the thread

    def __enter__(self) -> Self:
        threading.setprofile(self._start)
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        threading.setprofile(None)
        for prof in self.profiles:
            prof.disable()

    def dump(self, path: str) -> None:
        import pstats

        pstats.Stats(*self.profiles).dump_stats(path)


def run(base_url: str, size: dict[str, int], args: argparse.Namespace, tmp: Path) -> dict:
    from personafoundry import settings

    settings.configure()  # before prefect is imported: its start-up timeout is read then
    from flows.pipeline import pipeline_flow

    t0 = time.perf_counter()
    prefect_overhead_ms(1)  # starts the temporary server
    startup = time.perf_counter() - t0
    cfg = bench_config(base_url, tmp / "outputs", size, args)
    profiles = ThreadProfiles() if args.profile else contextlib.nullcontext()
    since, cpu0, wall0 = time.time(), time.process_time(), time.perf_counter()
    with profiles:
        summary = pipeline_flow(cfg)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if args.profile:
        profiles.dump(args.profile)
    stages, shards = stage_walls(since - 1)
    # Measured after the run: the server's ingestion of the trivial tasks' events would
    # otherwise still be under way when the pipeline starts (14 s of a first measurement).
    overhead = prefect_overhead_ms(OVERHEAD_TASKS)
    wait_for_task_runs("noop", OVERHEAD_TASKS + 1)
    return {"summary": summary, "wall": wall, "cpu": cpu, "overhead": overhead,
            "startup": startup, "stages": stages, "shards": shards}  # fmt: skip


def server_stats(base_url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=30) as reply:
        return json.load(reply)


def report(size: dict[str, int], args: argparse.Namespace, out: dict, server: dict) -> dict:
    summary, stats = out["summary"], out["summary"]["stats"]
    requests = sum(row["requests"] for row in summary["usage"].values())
    ideal = requests * args.latency / size["concurrency"]
    tasks = sum(s["tasks"] for s in out["shards"].values())
    return {
        "personas": stats["personas"].get("accepted"),
        "conversations": stats["conversations"].get("accepted"),
        "documents": stats["documents"].get("accepted"),
        "targets": {k: size[k] for k in ("personas", "conversations", "documents")},
        "concurrency": size["concurrency"],
        "latency_s": args.latency,
        "task_runner": args.task_runner,
        "shard_size": args.shard_size,
        "requests": requests,
        "server_requests": server["requests"],
        "server_max_in_flight": server["max_in_flight"],
        # mean requests in flight per 5 s since the first request: where slots sat idle
        "in_flight_per_5s": _per(server.get("in_flight_per_second", []), 5),
        "wall_s": round(out["wall"], 2),
        "ideal_s": round(ideal, 2),
        "efficiency": round(ideal / out["wall"], 3),
        "target": TARGET,
        "prefect_overhead_ms_per_task": round(out["overhead"], 2),
        "shard_tasks": tasks,
        "prefect_overhead_share": round(tasks * out["overhead"] / 1000 / out["wall"], 4),
        "prefect_startup_s": round(out["startup"], 2),
        "flow_process_cpu_s": round(out["cpu"], 2),
        "stages_wall_s": out["stages"],
        "stage_requests": {
            stage: sum(row.get("requests", 0) for row in part["usage"].values())
            for stage, part in stats.items()
            if isinstance(part, dict) and part.get("usage")
        },
        "shards": out["shards"],
        "loadavg_before": args.load_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def _per(seconds: list[float], n: int) -> list[float]:
    return [round(sum(seconds[i : i + n]) / len(seconds[i : i + n]), 1)
            for i in range(0, len(seconds), n)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="64 personas at concurrency 16")
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument("--parallel-shards", type=int, default=None)
    parser.add_argument("--task-runner", choices=("threads", "dask"), default="threads")
    parser.add_argument("--reject-rate", type=float, default=0.0,
                        help="share of first drafts the plausible responder spoils")  # fmt: skip
    parser.add_argument("--profile", help="write a cProfile of all threads of the flow here")
    parser.add_argument("--keep", help="write the run and its release under this folder "
                        "(default: a temporary one, removed)")  # fmt: skip
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.latency, args.reject_rate)
    if args.keep and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        parser.error(f"--keep {args.keep}: the folder is not empty (the release would clash)")
    args.load_before = [round(x, 2) for x in os.getloadavg()]
    size = SMALL if args.small else FULL
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency", str(args.latency),
         "--reject-rate", str(args.reject_rate)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base_url = json.loads(child.stdout.readline())["base_url"]
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")  # its own run records
            out = run(base_url, size, args, Path(args.keep or tmp))
            print(json.dumps(report(size, args, out, server_stats(base_url))))
    finally:
        child.stdin.close()
        child.wait(timeout=60)


if __name__ == "__main__":
    main()
