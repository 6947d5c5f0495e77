"""Decode throughput of the embedded model: through its OpenAI-compatible server vs direct.

Usage: .venv/bin/python benchmarks/embedded.py [--prompts 4] [--max-tokens 128] [--rounds 1]

Prints one JSON object. Top-level `gateway_tok_s` / `direct_tok_s` / `ratio` are the plain
(unconstrained) figures; `json` holds the same under a JSON-schema grammar.

Method:
- Same GGUF, same n_threads (and n_threads_batch), same n_ctx, same prompts, max_tokens and
  sampling on both paths: temperature 0, fixed seed, and the llama.cpp server's default
  repeat_penalty (1.1) passed explicitly to the direct call, whose own default is 1.0.
  `same_text` counts requests whose two replies are identical (a check that both paths did
  the same work).
- The server and the direct `llama_cpp.Llama` are both loaded, but requests alternate
  (server prompt i, then direct prompt i), never overlap: only one computes at a time, and
  background load from other jobs on the shared cores hits both sides alike.
- `*_tok_s` = completion_tokens / wall time of the request (prompt processing, grammar
  compilation and, for the server, HTTP included). `*_decode_tok_s` exclude the prompt:
  llama.cpp's own per-token eval counters (the server prints them to its log per request;
  the direct side reads `llama_perf_context`). One warm-up request per side is not timed.
- The served side goes through the project's gateway (`LlmClient`, llama.cpp dialect, a
  fresh empty response cache per request), as the issue asks.
- Measured on the idle 2-core machine (`--prompts 3 --max-tokens 128`, 2 threads): plain
  43.1 vs 43.9 tok/s (ratio 0.98), JSON grammar 22.7 vs 22.8 tok/s (ratio 1.00), identical
  replies on both paths. The grammar halves decode speed, so it is used only where a
  structured reply is parsed. Under CPU contention 2 threads collapse to about 1 tok/s on
  both paths (threads spin at barriers when the cores are oversubscribed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personafoundry.cache import ResponseCache
from personafoundry.config import EmbeddedConfig, LlmEndpoint
from personafoundry.embedded import EmbeddedServer, install_model, resolve_threads
from personafoundry.endpoints import resolve_embedded
from personafoundry.llm import LlmClient, inline_refs

SEED = 42
TEMPERATURE = 0.0
REPEAT_PENALTY = 1.1  # llama_cpp.server's request default
N_CTX = 2048
SYSTEM = "You write short, concrete descriptions of fictional people."
PROMPTS = [
    "Describe a retired nurse from Ohio who volunteers at a food bank.",
    "Describe a 27-year-old software tester in Texas who plays in a band.",
    "Describe a farmer in Iowa who is worried about the weather this year.",
    "Describe a high-school history teacher in Maine who collects maps.",
    "Describe a bus driver in Chicago who is studying to become an electrician.",
    "Describe a single mother in Arizona who runs a small bakery.",
]


class Profile(BaseModel):
    """The structured reply both sides are constrained to."""

    name: str
    age: int
    occupation: str
    hobbies: list[str]
    biography: str


SCHEMA = inline_refs(Profile.model_json_schema())  # what the gateway sends, used by both sides
EVAL_LINE = re.compile(r"^\S*\s+eval time =\s+([\d.]+) ms /\s+(\d+) runs", re.MULTILINE)


@dataclass(frozen=True)
class Sample:
    """One timed request: tokens generated, wall seconds, llama.cpp eval counters."""

    tokens: int
    wall_s: float
    eval_ms: float | None
    n_eval: int | None
    text: str


def messages_for(prompt: str, schema: dict | None) -> list[dict[str, str]]:
    suffix = " Reply in JSON." if schema else ""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt + suffix}]


def response_format(schema: dict | None) -> dict[str, Any] | None:
    return {"type": "json_object", "schema": schema} if schema else None


async def gateway_side(
    server: EmbeddedServer, prompt: str, schema: dict | None, max_tokens: int
) -> tuple[int, float, str]:
    """One request through the project's gateway (`LlmClient`): (tokens, wall_s, text).

    A fresh empty response cache per request, so nothing is served from it.
    """
    settings = LlmEndpoint(base_url=server.base_url, reply_retries=0, max_retries=0)
    endpoint = resolve_embedded("generator", settings, server.base_url, server.model)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "cache.sqlite")
        async with LlmClient({"generator": endpoint}, cache, run_id="bench") as llm:
            start = time.perf_counter()
            call = {"seed": SEED, "temperature": TEMPERATURE, "max_tokens": max_tokens}
            messages = messages_for(prompt, schema)
            if schema is None:
                result = await llm.complete_text("generator", messages, **call)
            else:
                result = await llm.complete_json("generator", messages, Profile, **call)
            wall = time.perf_counter() - start
            tokens = llm.usage.totals()["completion_tokens"]
        cache.close()
    return int(tokens), wall, result.content or ""


async def timed_gateway(
    server: EmbeddedServer, prompt: str, schema: dict | None, max_tokens: int
) -> Sample:
    """`gateway_side` plus the eval counters the server logged for that request."""
    offset = server.log_path.stat().st_size
    tokens, wall, text = await gateway_side(server, prompt, schema, max_tokens)
    with server.log_path.open("rb") as fh:
        fh.seek(offset)
        found = EVAL_LINE.findall(fh.read().decode("utf-8", "replace"))
    eval_ms, n_eval = (float(found[-1][0]), int(found[-1][1])) if found else (None, None)
    return Sample(tokens, wall, eval_ms, n_eval, text)


def direct_side(llm: Any, prompt: str, schema: dict | None, max_tokens: int) -> Sample:
    """The same request through `llama_cpp.Llama.create_chat_completion`, in process."""
    import llama_cpp

    before = llama_cpp.llama_perf_context(llm._ctx.ctx)  # cumulative: verbose=False never resets
    start = time.perf_counter()
    reply = llm.create_chat_completion(
        messages=messages_for(prompt, schema), max_tokens=max_tokens, temperature=TEMPERATURE,
        seed=SEED, repeat_penalty=REPEAT_PENALTY, response_format=response_format(schema),
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = llama_cpp.llama_perf_context(llm._ctx.ctx)
    return Sample(
        reply["usage"]["completion_tokens"], wall, after.t_eval_ms - before.t_eval_ms,
        after.n_eval - before.n_eval, reply["choices"][0]["message"]["content"] or "",
    )  # fmt: skip


def progress(mode: str, gateway: Sample, direct: Sample) -> None:
    """One stderr line per prompt pair, so a slow run shows where it is."""
    print(
        f"{mode}: gateway {gateway.tokens} tok {gateway.wall_s:.1f}s | "
        f"direct {direct.tokens} tok {direct.wall_s:.1f}s",
        file=sys.stderr, flush=True,
    )  # fmt: skip


def rate(samples: list[Sample]) -> float:
    return sum(s.tokens for s in samples) / sum(s.wall_s for s in samples)


def decode_rate(samples: list[Sample]) -> float | None:
    if any(s.eval_ms is None for s in samples):
        return None
    return 1000 * sum(s.n_eval for s in samples) / sum(s.eval_ms for s in samples)


def summarize(gateway: list[Sample], direct: list[Sample]) -> dict[str, Any]:
    g, d = rate(gateway), rate(direct)
    gd, dd = decode_rate(gateway), decode_rate(direct)
    same = sum(a.text == b.text for a, b in zip(gateway, direct, strict=True))
    return {
        "gateway_tok_s": round(g, 2), "direct_tok_s": round(d, 2), "ratio": round(g / d, 3),
        "gateway_decode_tok_s": gd and round(gd, 2), "direct_decode_tok_s": dd and round(dd, 2),
        "decode_ratio": round(gd / dd, 3) if gd and dd else None,
        "completion_tokens": {"gateway": sum(s.tokens for s in gateway),
                              "direct": sum(s.tokens for s in direct)},
        "same_text": f"{same}/{len(gateway)}",
    }  # fmt: skip


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from llama_cpp import Llama

    cfg = EmbeddedConfig(n_threads=args.n_threads, n_ctx=N_CTX)
    threads = resolve_threads(cfg)
    prompts = PROMPTS[: args.prompts]
    llm = Llama(
        model_path=str(install_model()), n_ctx=N_CTX, n_threads=threads,
        n_threads_batch=threads, verbose=False,
    )  # fmt: skip
    result: dict[str, Any] = {}
    with EmbeddedServer(cfg) as server:
        await timed_gateway(server, prompts[0], None, 8)  # warm-up, not timed
        direct_side(llm, prompts[0], None, 8)
        for mode, schema in (("plain", None), ("json", SCHEMA)):
            gateway, direct = [], []
            for _ in range(args.rounds):
                for prompt in prompts:  # alternate, never overlap
                    gateway.append(await timed_gateway(server, prompt, schema, args.max_tokens))  # fmt: skip
                    direct.append(direct_side(llm, prompt, schema, args.max_tokens))
                    progress(mode, gateway[-1], direct[-1])
            result[mode] = summarize(gateway, direct)
    plain = result["plain"]
    return {
        **result, "gateway_tok_s": plain["gateway_tok_s"], "direct_tok_s": plain["direct_tok_s"],
        "ratio": plain["ratio"], "n_threads": threads, "prompts": len(prompts),
        "rounds": args.rounds, "max_tokens": args.max_tokens, "model": server.model,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4, choices=range(1, len(PROMPTS) + 1))
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--n-threads", type=int, default=None, help="default: all cores")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
