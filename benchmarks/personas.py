"""Personas benchmark (issue 4): census sampling at 1M rows and enrichment vs the ideal.

Prints one JSON object on stdout:
- `sampling`: `seconds` (wall) and `rows_per_s` for `sample_personas(n)` in a process whose
  census model is already loaded (warm: the number the target is about), `cpu_seconds`
  (the process's CPU time for it: what the wall time would be on an otherwise idle core;
  other jobs on a shared machine inflate wall time, not this), plus
  `load_seconds` (joint from the disk cache + name tables, paid once per process),
  `seconds_with_load` (both: a fresh process sampling n rows), and `fit_seconds_cold`
  (the IPF fit itself, only with `--cold`; it is what the disk cache saves, per process);
  `tvd` per attribute and two-way table, `max_tvd`, `rule_violations` (total over every
  rule in rules.toml), the load average and the targets (< 5 s on 2 cores, max TVD <= 0.01,
  0 violations) with whether each was met.
- `enrichment`: `benchmarks/enrich.py`'s measurement (default ledger, loopback test server
  with fixed latency): `efficiency` = ideal time (requests x latency / concurrency) / wall
  time, target >= 0.85; `gateway_same_load` is `benchmarks/gateway.py`'s bare gateway with
  the same request count right after, and `ratio_to_gateway` their quotient (how much of
  the gap is enrichment's own, not the gateway's or the machine's).

Run: .venv/bin/python benchmarks/personas.py [--n 1000000] [--cold] [--no-enrich]
     [--personas 256 --concurrency 64 --latency 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from personafoundry.calibration import calibration_report
from personafoundry.census import sample_personas
from personafoundry.census_fit import build_census_model, fit_census_model
from personafoundry.config import PersonasConfig
from personafoundry.names import load_name_tables


def measure_sampling(n: int, seed: int, cold: bool) -> dict[str, Any]:
    """Load (or fit) the census model, sample `n` skeletons, and calibrate the sample."""
    fit_cold = None
    if cold:
        start = time.perf_counter()
        build_census_model(disk_cache=False)
        fit_cold = time.perf_counter() - start
    start = time.perf_counter()
    fit_census_model()
    load_name_tables()
    load = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    sample = sample_personas(n, PersonasConfig(), rng_seed=seed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    report = calibration_report(sample.table).to_json()
    report_seconds = time.perf_counter() - start
    tvd = {k: round(v["tvd"], 5) for k, v in {**report["attributes"], **report["two_way"]}.items()}
    return {
        "n": n,
        "seed": seed,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "fit_seconds_cold": None if fit_cold is None else round(fit_cold, 2),
        "load_seconds": round(load, 2),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "seconds_with_load": round(seconds + load, 3),
        "rows_per_s": round(n / seconds),
        "report_seconds": round(report_seconds, 2),
        "tvd": tvd,
        "max_tvd": round(report["max_tvd"], 5),
        "rule_violations": report["rule_violations_total"],
        "targets": {
            "seconds_under_5": seconds < 5,
            "max_tvd_at_most_0.01": report["max_tvd"] <= 0.01,
            "zero_violations": report["rule_violations_total"] == 0,
        },
    }


def gateway_efficiency(requests: int, concurrency: int, latency: float) -> dict[str, Any]:
    """`benchmarks/gateway.py`'s bare-gateway run with the same requests, right after:
    on a shared machine this says how much of the gap to the ideal is the gateway's."""
    import asyncio
    import tempfile

    import gateway  # benchmarks/gateway.py

    gateway.LATENCY = latency
    proc, base_url = gateway.start_server(latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return asyncio.run(gateway.run_load(base_url, requests, concurrency, Path(tmp)))
    finally:
        proc.terminate()
        proc.wait(10)


HEADLINE = ("seconds", "rows_per_s", "tvd", "max_tvd", "rule_violations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold", action="store_true", help="also time the IPF fit uncached")
    parser.add_argument("--no-enrich", action="store_true", help="sampling only")
    parser.add_argument("--personas", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=1.0)
    args = parser.parse_args()
    sampling = measure_sampling(args.n, args.seed, args.cold)
    # the headline keys at the top level; the full sampling figures under "sampling"
    out: dict[str, Any] = {k: sampling[k] for k in HEADLINE if k in sampling}
    out["sampling"] = sampling
    if not args.no_enrich:
        import enrich as enrich_benchmark  # benchmarks/enrich.py

        enrichment = enrich_benchmark.measure(args.personas, args.concurrency, args.latency)
        enrichment["gateway_same_load"] = gateway_efficiency(
            enrichment["requests"], args.concurrency, args.latency
        )
        enrichment["ratio_to_gateway"] = round(
            enrichment["efficiency"] / enrichment["gateway_same_load"]["efficiency"], 3
        )
        enrichment["load_average_1m"] = round(os.getloadavg()[0], 2)
        out["enrichment"] = enrichment
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
