"""Conversation generator modes on the embedded model: acceptance, rounds and tokens.

Usage: .venv/bin/python benchmarks/converse.py [--pairs 2] [--modes one_call,turn_by_turn]
       [--judges combined] [--max-rounds 2] [--turns 4] [--dump conversations.jsonl]
       .venv/bin/python benchmarks/converse.py --compare-judges conversations.jsonl

Prints one JSON object: per mode, `acceptance_rate`, `rounds_per_accepted`,
`tokens_per_accepted` (generator + critic, prompt + completion), `seconds_per_accepted`,
request counts and which experts failed how often; `--dump` writes every accepted and
rejected conversation (with its failed experts) as JSON lines for reading.

Method:
- Six hand-written personas (first-person facts, as the enrichment stage writes them)
  are paired at random (seeded; each persona in enough pairs for `--pairs`), so each mode sees the same pairs,
  scenarios, turn counts and facts to reveal. `--pairs` caps how many pairs run.
- A fresh response cache per mode (in a temporary folder): every figure is paid tokens.
- The embedded llama.cpp server is started once and shared by both modes; conversations
  of one mode run concurrently (the gateway bounds in-flight requests), modes run one
  after the other. CPU is shared, so seconds are indicative only; tokens are exact.
- `--compare-judges` re-judges the dumped conversations with the LLM judges both ways
  (one combined call vs one call per judge; fresh caches) and reports calls, tokens,
  invalid replies per conversation and how far the two ways' scores differ.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personafoundry.cache import ResponseCache
from personafoundry.config import ConverseConfig, RunConfig
from personafoundry.conversation_critics import Draft
from personafoundry.conversation_drafts import build_dialogues
from personafoundry.conversation_judges import JUDGES, llm_judges
from personafoundry.converse import generate_conversations
from personafoundry.embedded import EmbeddedServer
from personafoundry.llm import Endpoint, LlmClient
from personafoundry.modelfile import MODEL_SHA256
from personafoundry.pairing import pair_personas

SEED = 11
PEOPLE = [
    ("Maria Lopez", 41, "Female", "Ohio", "Registered nurse", [
        ("work", "I work night shifts in the emergency room at Mercy Hospital in Toledo."),
        ("hobbies", "I grow tomatoes and peppers in my backyard garden."),
        ("family", "I have two teenage sons, Diego and Mateo, who both play soccer."),
        ("habits", "I drink black coffee before every shift."),
        ("history", "I moved to Ohio from El Paso in 2009."),
    ]),
    ("John Miller", 67, "Male", "Ohio", "Retired machinist", [
        ("history", "I worked as a machinist at a Ford plant for 38 years."),
        ("hobbies", "I restore old Harley-Davidson motorcycles in my garage."),
        ("family", "My beagle Rusty is twelve years old."),
        ("health", "I had knee surgery last spring."),
        ("location", "I have lived on Maple Avenue since 1984."),
    ]),
    ("Aisha Khan", 29, "Female", "Texas", "Software tester", [
        ("work", "I test mobile banking apps for a company in Austin."),
        ("hobbies", "I play bass guitar in a cover band on weekends."),
        ("relationships", "I am engaged to my college friend Omar."),
        ("preferences", "I love spicy ramen and eat it twice a week."),
        ("finance", "I am saving for a down payment on a condo."),
    ]),
    ("Tom Berg", 52, "Male", "Minnesota", "High school history teacher", [
        ("work", "I teach American history at a high school in Duluth."),
        ("hobbies", "I collect old maps of the Great Lakes."),
        ("family", "My daughter Emma just started college in Chicago."),
        ("habits", "I go ice fishing every January."),
        ("health", "I gave up sugar two years ago."),
    ]),
    ("Lena Ortiz", 35, "Female", "Arizona", "Bakery owner", [
        ("work", "I run a small bakery called Sunrise Bread in Tucson."),
        ("family", "I am a single mother of a six-year-old girl named Sofia."),
        ("habits", "I wake up at four every morning to bake."),
        ("preferences", "My favorite bread to make is sourdough with rosemary."),
        ("finance", "I took out a loan in 2021 to buy a second oven."),
    ]),
    ("Sam Lee", 24, "Male", "Washington", "Bus driver", [
        ("work", "I drive a city bus on route 7 in Seattle."),
        ("history", "I am studying at night to become an electrician."),
        ("hobbies", "I play pickup basketball at the community center."),
        ("location", "I share an apartment with two roommates in Tacoma."),
        ("preferences", "I listen to true crime podcasts on my breaks."),
    ]),
]  # fmt: skip


def personas_table() -> pa.Table:
    rows = []
    for i, (name, age, sex, state, job, facts) in enumerate(PEOPLE):
        pid = f"per_{i:016x}"
        narrative = (
            f"My name is {name}. I am {age} and live in {state}, where I work as a {job.lower()}."
        )
        rows.append(
            {
                "persona_id": pid, "name": name, "age": age, "sex": sex, "state": state,
                "occupation": job, "narrative": narrative,
                "facts": [
                    {"fact_id": f"fact_{i}{j:015x}", "category": c, "statement": s}
                    for j, (c, s) in enumerate(facts)
                ],
            }
        )  # fmt: skip
    return pa.Table.from_pylist(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--modes", default="one_call,turn_by_turn")
    parser.add_argument("--judges", default="combined", choices=["combined", "separate", "none"])
    parser.add_argument("--max-rounds", type=int, default=3)
    parser.add_argument("--exemplars", type=int, default=1)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--dump", type=Path, default=None)
    parser.add_argument(
        "--compare-judges", type=Path, default=None,
        help="instead: judge the conversations of an earlier --dump both ways (combined, separate)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("personafoundry").setLevel(logging.INFO)
    logging.getLogger("personafoundry.llm").setLevel(logging.DEBUG)
    # long timeouts: on shared cores a one-call draft can take minutes; a timeout would
    # be retried and paid again
    slow = {"timeout_s": args.timeout, "max_retries": 1}
    cfg = RunConfig.model_validate(
        {"llm": {"generator": slow, "critic": {**slow, "temperature": 0.0, "max_tokens": 300}}}
    )
    out: dict[str, Any] = {"model": "embedded", "pairs": args.pairs, "judges": args.judges}
    out["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
    rows: list[dict[str, Any]] = []
    with EmbeddedServer(cfg.embedded) as server, tempfile.TemporaryDirectory() as tmp:
        endpoints = {
            role: Endpoint(role, server.base_url, server.model, "llamacpp",
                           f"embedded:{MODEL_SHA256}", getattr(cfg.llm, role))
            for role in ("generator", "critic")
        }  # fmt: skip
        if args.compare_judges:
            dumped = [json.loads(x) for x in args.compare_judges.read_text("utf-8").splitlines()]
            out = {"judges": asyncio.run(compare_judges(endpoints, cfg, dumped, Path(tmp)))}
        for mode in args.modes.split(",") if not args.compare_judges else []:
            conv = cfg.converse.model_copy(
                update={"mode": mode, "judges": args.judges, "max_rounds": args.max_rounds,
                        "exemplars_shown": args.exemplars, "turns_min": args.turns, "turns_max": args.turns}
            )  # fmt: skip
            # enough appearances per persona for `--pairs` conversations
            per = max(1, -(-2 * args.pairs // len(PEOPLE)))
            full = pair_personas(
                personas_table(), conv.model_copy(update={"per_persona": per}), rng_seed=SEED
            ).table
            conv_pairs = full.slice(0, args.pairs)
            stats, dump = asyncio.run(run_mode_pairs(endpoints, cfg, conv, Path(tmp), conv_pairs))
            out[mode] = stats
            rows += dump
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.dump:
        args.dump.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows), "utf-8")
    print(json.dumps(out, indent=2, sort_keys=True))


async def compare_judges(
    endpoints: dict[str, Any], cfg: RunConfig, dumped: list[dict[str, Any]], cache_dir: Path
) -> dict[str, Any]:
    """Judge the same drafts with one combined call and with one call per judge."""
    personas = personas_table()
    rows = [r for r in dumped if len(r.get("turns") or []) >= 2]
    pairs = pa.Table.from_pylist(
        [{k: r[k] for k in ("conversation_id", "persona_ids", "scenario")} for r in rows]
    )
    dialogues, _ = build_dialogues(pairs, personas, cfg.converse, SEED)
    drafts = [Draft(tuple((t["speaker_id"], t["text"]) for t in r["turns"])) for r in rows]
    out: dict[str, Any] = {"conversations": len(rows)}
    scores: dict[str, dict[str, list[float | None]]] = {}
    for mode in ("combined", "separate"):
        cache = ResponseCache(cache_dir / f"judges-{mode}.sqlite")
        start = time.monotonic()
        async with LlmClient(endpoints, cache, run_id=f"judges-{mode}") as llm:
            scores[mode] = {name: [] for name in JUDGES}
            for d, draft in zip(dialogues, drafts, strict=True):
                for judge in llm_judges(mode):
                    for v in await judge.judge_many(draft, d, llm, seed=SEED):
                        scores[mode][v.expert].append(v.score)
            usage = llm.usage.totals()
        out[mode] = {
            "calls": usage["requests"],
            "invalid_replies": usage["invalid_replies"],
            "tokens_per_conversation": (usage["prompt_tokens"] + usage["completion_tokens"])
            / max(1, len(rows)),
            "seconds_per_conversation": round((time.monotonic() - start) / max(1, len(rows)), 1),
            "scores": scores[mode],
        }
    out["mean_abs_score_difference"] = {
        name: _mean_abs(scores["combined"][name], scores["separate"][name]) for name in JUDGES
    }
    return out


def _mean_abs(a: list[float | None], b: list[float | None]) -> float | None:
    diffs = [abs(x - y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return round(sum(diffs) / len(diffs), 2) if diffs else None


async def run_mode_pairs(
    endpoints: dict[str, Any],
    cfg: RunConfig,
    conv: ConverseConfig,
    cache_dir: Path,
    pairs: pa.Table,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    personas = personas_table()
    cache = ResponseCache(cache_dir / f"{conv.mode}.sqlite")
    start = time.monotonic()
    async with LlmClient(endpoints, cache, run_id=f"bench-{conv.mode}") as llm:
        result = await generate_conversations(pairs, personas, conv, llm, rng_seed=SEED)
    seconds = time.monotonic() - start
    stats: dict[str, Any] = dict(result.stats)
    stats["seconds"] = round(seconds, 1)
    accepted = stats["accepted"]
    stats["seconds_per_accepted"] = round(seconds / accepted, 1) if accepted else None
    dump = [{"mode": conv.mode, "accepted": True, **row} for row in result.table.to_pylist()]
    dump += [{"mode": conv.mode, "accepted": False, **row} for row in result.dropped.to_pylist()]
    reviews = result.reviews.to_pylist()
    for row in dump:
        row["failed"] = [
            f"r{r['round']} {r['expert']}: {r['feedback'] or r['error']}"
            for r in reviews
            if r["item_id"] == row["conversation_id"] and not r["passed"]
        ]
    return stats, dump


if __name__ == "__main__":
    main()
