"""Census skeleton benchmark: sampling throughput and calibration of a large sample.

Prints one JSON object on stdout: `fit_seconds` (one-off IPF fit per process, cold),
`seconds` and `rows_per_s` for `sample_personas(n)` with the model fitted (warm),
`report_seconds`, `tvd` per attribute (and two-way table), `max_tvd`, `rule_violations`
(total over every rule in rules.toml) and the targets of issue 4 (1M rows in < 5 s,
max TVD <= 0.01, 0 violations) with whether each was met.

Run: .venv/bin/python benchmarks/census.py [--n 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from personafoundry.calibration import calibration_report
from personafoundry.census import sample_personas
from personafoundry.census_fit import fit_census_model
from personafoundry.config import PersonasConfig
from personafoundry.names import load_name_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    fit_census_model()
    load_name_tables()
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sample = sample_personas(args.n, PersonasConfig(), rng_seed=args.seed)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = calibration_report(sample.table).to_json()
    report_seconds = time.perf_counter() - start
    tvd = {k: round(v["tvd"], 5) for k, v in {**report["attributes"], **report["two_way"]}.items()}
    out = {
        "n": args.n,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "fit_seconds": round(fit_seconds, 2),
        "seconds": round(seconds, 3),
        "rows_per_s": round(args.n / seconds),
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
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
