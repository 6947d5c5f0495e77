"""Enrichment throughput against the gateway's ideal on a fixed-latency loopback server.

Census skeletons go through `enrich_personas` (generator, deterministic gates, two LLM
judges) against the test server (tests/llm_server.py) started as a separate process with
a responder that writes a gate-passing persona from the prompt's profile, so every
persona costs exactly one generator call and two judge calls.

efficiency = ideal time (requests x latency / concurrency) / measured wall time, the
gateway benchmark's definition; target >= 0.85. Prints one JSON object on stdout.

    .venv/bin/python benchmarks/enrich.py [--quick] [--personas N --concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from personafoundry.cache import ResponseCache
from personafoundry.census import sample_personas
from personafoundry.config import LlmEndpoint, PersonasConfig
from personafoundry.enrich import enrich_personas
from personafoundry.llm import Endpoint, LlmClient

FACTS = (
    "My favorite cereal is Honey Nut Cheerios.",
    "My best friend Sam lives on Oak Street.",
    "I keep a red Schwinn bike in the garage.",
    "My grandmother Rosa taught me to play checkers.",
    "I have a library card from the Main Street branch.",
    "My favorite song is Here Comes the Sun by the Beatles.",
    "I watched the Fourth of July fireworks from Cedar Hill.",
    "My lucky number is 7.",
    "I keep a jar of Jif peanut butter in my desk.",
    "I learned to swim at the Lincoln Park pool.",
    "My go-to pizza place is Gino's on 5th Avenue.",
    "I still have a Polaroid camera from Aunt June.",
)


def persona_reply(payload: dict[str, Any]) -> dict[str, Any]:
    """A draft that passes the gates for whatever profile the prompt shows."""
    prompt = payload["messages"][1]["content"]
    opener = prompt.rsplit("The first narrative sentence is ", 1)[1].split('"')[1]
    work = prompt.split("- Work: ", 1)[1].split("\n", 1)[0]
    job = "" if work.startswith(("none", "not working", "unemployed", "serves")) else work
    narrative = [
        opener,
        f"I work as a {job.lower()}." if job else "I go to school nearby.",
        "I walk to the park on Sundays and read the paper with a cup of tea at 7 a.m.",
        "My best friend Sam and I have known each other for many years now.",
    ]
    facts = [{"category": "history", "statement": s} for s in FACTS]
    return {"json": {"narrative": narrative, "facts": facts}}


def responder(payload: dict[str, Any]) -> dict[str, Any]:
    name = payload["response_format"]["json_schema"]["name"]
    if name == "PersonaDraft":
        return persona_reply(payload)
    return {"json": {"feedback": "Believable and consistent.", "score": 4}}


def serve(latency: float) -> None:
    """Child process: the test server with the persona responder, until stdin closes."""
    from llm_server import LlmServer

    server = LlmServer(latency).start()
    server.responder = responder
    print(json.dumps({"base_url": server.base_url}), flush=True)
    sys.stdin.read()
    server.stop()


async def run(base_url: str, personas: int, concurrency: int, cache_dir: Path) -> dict:
    """Enrich `personas` census skeletons with the default ledger (10-14 facts)."""
    settings = LlmEndpoint(base_url=base_url, model="bench", max_concurrency=concurrency,
                           timeout_s=60, max_tokens=400)  # fmt: skip
    endpoints = {r: Endpoint(r, base_url, "bench", "openai", base_url, settings)
                 for r in ("generator", "critic")}  # fmt: skip
    skeletons = sample_personas(personas, PersonasConfig(), rng_seed=1).table
    cfg = PersonasConfig(max_rounds=2)
    async with LlmClient(endpoints, ResponseCache(cache_dir / "c.sqlite"), run_id="b") as llm:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = await enrich_personas(skeletons, cfg, llm, rng_seed=1)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        requests = int(llm.usage.totals()["requests"])
    reasons = Counter(r.split(":")[0] for r in result.dropped.column("reason").to_pylist())
    return {"wall_s": wall, "cpu_s": cpu, "requests": requests, "reasons": dict(reasons),
            **result.stats}  # fmt: skip


def measure(personas: int, concurrency: int, latency: float) -> dict[str, Any]:
    """Start the loopback server in a child process, enrich, and compare with the ideal."""
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(latency)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        base_url = json.loads(child.stdout.readline())["base_url"]
        with tempfile.TemporaryDirectory() as tmp:
            out = asyncio.run(run(base_url, personas, concurrency, Path(tmp)))
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    ideal = out["requests"] * latency / concurrency
    return {
        "personas": personas,
        "concurrency": concurrency,
        "latency_s": latency,
        "requests": out["requests"],
        "accepted": out["accepted"],
        "rejected": out["rejected"],
        "rejected_reasons": out["reasons"],
        "wall_s": round(out["wall_s"], 3),
        "ideal_s": round(ideal, 3),
        "efficiency": round(ideal / out["wall_s"], 3),
        "target": 0.85,
        "client_cpu_s": round(out["cpu_s"], 3),
        "personas_per_s": round(personas / out["wall_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--personas", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="64 personas at concurrency 16")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.latency)
    if args.quick:
        args.personas, args.concurrency = 64, 16
    print(json.dumps(measure(args.personas, args.concurrency, args.latency)))


if __name__ == "__main__":
    main()
