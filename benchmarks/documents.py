"""Private documents on the embedded model: acceptance by type, fact coverage, probes.

Usage: .venv/bin/python benchmarks/documents.py [--per-persona 2] [--types email,receipt]
       [--limit 6] [--max-rounds 2] [--distractors 0] [--dump documents.jsonl]

Prints one JSON object: `acceptance_rate` overall and per document type, the coverage
report summed over facts (planned / in an accepted document / verified), probes per kind,
how often each expert failed, requests and tokens per role, and seconds. `--dump` writes
every accepted and dropped document (with its reviews) as JSON lines for reading.

Method:
- The hand-written personas of `tests/test_doc_plan.py` (first-person facts, one changed
  fact with validity years), planned with the given config and seed 1; `--limit` caps the
  number of planned documents, taken in plan order.
- A fresh response cache in a temporary folder: every figure is paid tokens.
- CPU is shared with whatever else runs: seconds are indicative only; tokens are exact.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_doc_plan import make_personas

from personafoundry.cache import ResponseCache
from personafoundry.config import DocumentsConfig, RunConfig
from personafoundry.doc_plan import plan_documents
from personafoundry.documents import DocumentsResult, generate_documents
from personafoundry.endpoints import open_endpoints
from personafoundry.llm import LlmClient
from personafoundry.probes import build_probes


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-persona", type=int, default=2)
    ap.add_argument("--types", default="", help="comma-separated catalog types; empty = all")
    ap.add_argument("--limit", type=int, default=6, help="max planned documents to generate")
    ap.add_argument("--max-rounds", type=int, default=2)
    ap.add_argument("--distractors", type=int, default=0)
    ap.add_argument("--dump", type=Path, default=None)
    return ap.parse_args()


async def generate(cfg: RunConfig, docs_cfg: DocumentsConfig, limit: int) -> tuple[Any, ...]:
    personas = make_personas()
    plan = plan_documents(personas, docs_cfg, rng_seed=1).table
    plan = plan.slice(0, limit)
    with tempfile.TemporaryDirectory() as tmp, open_endpoints(cfg.llm, cfg.embedded) as eps:
        async with LlmClient(eps, ResponseCache(Path(tmp) / "c.sqlite"), run_id="bench") as llm:
            start = time.perf_counter()
            result = await generate_documents(plan, personas, docs_cfg, llm, rng_seed=1)
            return personas, plan, result, time.perf_counter() - start, llm.stats()


def figures(result: DocumentsResult, probes: dict[str, int], secs: float, usage: Any) -> dict:
    coverage = result.coverage.to_pylist()
    failed = Counter(r["expert"] for r in result.reviews.to_pylist() if not r["passed"])
    return {
        "planned": result.stats["planned"],
        "accepted": result.stats["accepted"],
        "acceptance_rate": round(result.stats["accepted"] / max(result.stats["planned"], 1), 3),
        "by_type": result.by_type.to_pylist(),
        "facts": {
            "planned": len(coverage),
            "in_accepted_document": sum(c["accepted"] > 0 for c in coverage),
            "verified": sum(c["verified"] > 0 for c in coverage),
        },
        "probes": probes,
        "expert_failures": dict(failed),
        "rounds_per_accepted": round(result.stats["rounds"] / max(result.stats["accepted"], 1), 2),
        "seconds": round(secs, 1),
        "usage": usage,
    }


def dump(path: Path, result: DocumentsResult) -> None:
    reviews: dict[str, list[dict[str, Any]]] = {}
    for r in result.reviews.to_pylist():
        reviews.setdefault(r["item_id"], []).append(
            {k: r[k] for k in ("round", "expert", "score", "passed", "feedback", "error")}
        )
    with path.open("w", encoding="utf-8") as out:
        for doc in [*result.table.to_pylist(), *result.dropped.to_pylist()]:
            row = {k: (str(v) if k == "timestamp" else v) for k, v in doc.items()}
            row["reviews"] = reviews.get(doc["document_id"], [])
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def main() -> None:
    args = parse_args()
    docs_cfg = DocumentsConfig(
        per_persona=args.per_persona,
        doc_types=[t for t in args.types.split(",") if t],
        max_rounds=args.max_rounds,
        distractors_per_persona=args.distractors,
    )
    cfg = RunConfig()
    personas, plan, result, secs, usage = asyncio.run(generate(cfg, docs_cfg, args.limit))
    probes = build_probes(personas, result.table, docs_cfg, rng_seed=1, plan=plan)
    if args.dump:
        dump(args.dump, result)
    print(json.dumps(figures(result, probes.stats, secs, usage), indent=1))


if __name__ == "__main__":
    main()
