"""Gateway throughput: structured-output requests against a 1.0 s-latency loopback server.

Runs the test server (tests/llm_server.py) as a separate process so that its work is not
charged to the client's CPU time, then sends N requests through `LlmClient.complete_json`
at concurrency C (cache enabled but cold: every request is paid, as in a first run).

efficiency = ideal time (N x latency / C) / measured wall time; target >= 0.90 at C=64
and >= 0.85 at C=256. Prints one JSON object on stdout.

    .venv/bin/python benchmarks/gateway.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personafoundry.cache import ResponseCache
from personafoundry.config import LlmEndpoint
from personafoundry.llm import Endpoint, LlmClient


class Verdict(BaseModel):
    feedback: str = Field(max_length=200)
    score: int = Field(ge=1, le=5)


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "llm_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    return proc, json.loads(line)["base_url"]


async def run_load(base_url: str, requests: int, concurrency: int, cache_dir: Path) -> dict:
    settings = LlmEndpoint(
        base_url=base_url, model="bench", max_concurrency=concurrency, timeout_s=60, max_tokens=50
    )
    endpoint = Endpoint("critic", base_url, "bench", "openai", base_url, settings)
    cache = ResponseCache(cache_dir / f"c{concurrency}.sqlite")
    messages = [{"role": "user", "content": "Score this conversation from 1 to 5."}]
    async with LlmClient({"critic": endpoint}, cache, run_id="bench") as llm:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(
            *(llm.complete_json("critic", messages, Verdict, seed=i) for i in range(requests))
        )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        usage = llm.stats()["critic/bench"]
    cache.close()
    return {
        "requests": requests,
        "concurrency": concurrency,
        "ok": sum(r.ok for r in results),
        "wall_s": round(wall, 3),
        "ideal_s": round(requests * LATENCY / concurrency, 3),
        "efficiency": round(requests * LATENCY / concurrency / wall, 4),
        "cpu_ms_per_request": round(cpu * 1000 / requests, 3),
        "retries": usage["retries"],
    }


LATENCY = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer requests (smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    proc, base_url = start_server(LATENCY)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = {
                "latency_s": LATENCY,
                "backend": "openai AsyncOpenAI + aiohttp",
                "c64": asyncio.run(run_load(base_url, 1000 // scale, 64, Path(tmp))),
                "c256": asyncio.run(run_load(base_url, 2000 // scale, 256, Path(tmp))),
            }
    finally:
        proc.terminate()
        proc.wait(10)
    out["targets"] = {"c64": 0.90, "c256": 0.85}
    out["meets_targets"] = out["c64"]["efficiency"] >= 0.90 and out["c256"]["efficiency"] >= 0.85
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
