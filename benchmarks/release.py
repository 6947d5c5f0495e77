"""Release benchmark: validate, write, verify and query a large synthetic release.

Prints one JSON object on stdout. Tables come from `personafoundry.synthetic` (no LLM;
census personas from the real census sampler, so the census gate is exercised):
at `--scale 1` 100,000 conversations, 500,000 documents, 20,000 personas, 100,000 probes
and two reviews per item (1.24M rows); document bodies are replaced by ~120 words drawn
from a seeded Zipf vocabulary so Parquet sizes are realistic. Measured:
- `validate_s` / `write_s`: the two phases of `cut_release` (GE suites + DuckDB checks +
  census gate; then Parquet, card, manifest, hashes, rename), as the release reports them;
  `validate_plus_write_s` is the whole call (the issue's target: under 60 s). GE's import
  is paid once per process before (`first_validation_with_imports_s`, tiny tables);
- `fingerprint_s`: `validate.fingerprint_tables`, what `cut_release` pays instead of
  `validate_s` when it reuses the pipeline's validation of the same tables;
- `verify_s`: `verify_release` re-hashing every file;
- `queries_s`: each of `catalog.EXAMPLE_QUERIES` on a fresh DuckDB connection.

Run: .venv/bin/python benchmarks/release.py --scale 0.1   (the default is --scale 1)
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personafoundry.catalog import EXAMPLE_QUERIES, query_release, verify_release
from personafoundry.config import ValidateConfig
from personafoundry.release import cut_release
from personafoundry.synthetic import synthetic_tables
from personafoundry.validate import fingerprint_tables, validate_tables

WORDS_PER_BODY = 120
VOCAB = 20_000


def realistic_bodies(n: int, seed: int) -> pa.Array:
    """`n` bodies of ~WORDS_PER_BODY pseudo-words with Zipf frequencies."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i:x}" for i in range(VOCAB)])
    ranks = np.minimum(rng.zipf(1.2, size=(n, WORDS_PER_BODY)), VOCAB) - 1
    return pa.array([" ".join(row) + "." for row in vocab[ranks]])


def build(scale: float, seed: int) -> tuple[dict[str, pa.Table], float]:
    start = time.perf_counter()
    tables = synthetic_tables(
        n_personas=max(8, int(20_000 * scale)),
        n_conversations=max(6, int(100_000 * scale)),
        n_documents=max(10, int(500_000 * scale)),
        n_probes=max(6, int(100_000 * scale)),
        seed=seed,
        realistic_census=True,
    )
    docs = tables["documents"]
    i = docs.schema.get_field_index("body")
    tables["documents"] = docs.set_column(
        i, docs.schema.field(i), realistic_bodies(docs.num_rows, seed)
    )
    return tables, time.perf_counter() - start


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 100k conversations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the release here")
    args = parser.parse_args()
    tables, generate_s = build(args.scale, args.seed)
    rows = {name: t.num_rows for name, t in tables.items()}
    _, import_s = timed(validate_tables, synthetic_tables(), ValidateConfig())  # GE import
    root = args.keep or Path(tempfile.mkdtemp(prefix="pf-release-bench-"))
    result, cut_s = timed(
        cut_release, tables, root=root, name="bench", version="1.0.0", config={}, run_info={}
    )
    report = result.report
    _, fingerprint_s = timed(fingerprint_tables, tables, ValidateConfig())
    verified, verify_s = timed(verify_release, result.path)
    queries = {}
    for name, sql in EXAMPLE_QUERIES.items():
        _, queries[name] = timed(query_release, result.path, sql)
    size = sum(p.stat().st_size for p in result.path.rglob("*") if p.is_file())
    out = {
        "scale": args.scale,
        "rows": rows,
        "checks": report.stats["checks"],
        "census_gate": {k: report.census.get(k) for k in ("status", "note", "census_rows")},
        "generate_s": round(generate_s, 2),
        "first_validation_with_imports_s": import_s,
        "validate_s": round(result.stats["validate_ms"] / 1000, 2),
        "write_s": round(result.stats["write_ms"] / 1000, 2),
        "validate_plus_write_s": cut_s,
        "fingerprint_s": fingerprint_s,
        "verify_s": verify_s,
        "verify_ok": verified.ok,
        "queries_s": queries,
        "release_bytes": size,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(out, indent=2))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
