"""Independent recomputations of dataset-report figures, for `tests/test_report.py`.

Nothing here imports the report's code: figures are recounted in plain Python from the
release's rows, or from what the loopback test server answered, so a report bug cannot
hide behind the same bug in its check. (MinHash uses datasketch with the project's 32-bit
shingle hash, `minhash.shingle_hash32`, so that both draw the same permutations.)

Decisions:
- Tokens: the test server bills ceil(characters / 4) of the prompt messages and of the
  reply (`llm_server._tokens`). The plausible responder is deterministic per request, so
  replaying it on the recorded payloads gives every reply again, hence its tokens.
- Stage of a request: conversation drafts and reviews have reply schemas of their own;
  the personas stage runs alone and ends before the first conversation or document draft;
  every other later request belongs to the documents stage. Role: the critic endpoint of
  the test config has temperature 0, the generator's does not.
- Percentiles interpolate linearly between order statistics (numpy's default, written
  out here).
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasketch import MinHash
from llm_server import LlmServer, _prompt_text, _tokens, default_content
from pipeline_runs import MODEL, REJECT_RATE
from plausible import CATALOG, Plausible, schema_of

from personafoundry.minhash import shingle_hash32

WORD = re.compile(r"[a-z0-9]+")
CONVERSATION_SCHEMAS = frozenset({"OneCallReply", "ConversationReview"})
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
AGE_GROUPS = ((18, "under 18"), (30, "18-29"), (50, "30-49"), (65, "50-64"))


def words_of(text: str) -> list[str]:
    return WORD.findall(text.lower())


def server_usage(server: LlmServer, count: int) -> dict[tuple[str, str], Counter[str]]:
    """Requests and tokens per (stage, "role/model") over the server's first `count` requests."""
    replay = Plausible(reject_rate=REJECT_RATE)  # a fresh one: the run's keeps its counters
    usage: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    personas_done = False
    for payload in server.requests[:count]:
        name = schema_of(payload)[0]
        personas_done = personas_done or name in CONVERSATION_SCHEMAS or name in CATALOG
        stage = "conversations" if name in CONVERSATION_SCHEMAS else "personas"
        if stage == "personas" and personas_done:
            stage = "documents"
        role = "critic" if payload.get("temperature") == 0.0 else "generator"
        answer = replay(payload)
        reply = json.dumps(answer["json"]) if answer else default_content(payload)
        counter = usage[(stage, f"{role}/{MODEL}")]
        counter["requests"] += 1
        counter["prompt_tokens"] += _tokens(_prompt_text(payload))
        counter["completion_tokens"] += _tokens(reply)
    return dict(usage)


def cost(counter: Counter[str], price: dict[str, float]) -> float:
    """USD for the tokens of `counter` at `price` (per 1,000 tokens; empty = free)."""
    p, c = price.get("prompt_per_1k", 0.0), price.get("completion_per_1k", 0.0)
    return counter["prompt_tokens"] / 1000 * p + counter["completion_tokens"] / 1000 * c


def percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def histogram(values: list[int], edges: list[int]) -> list[int]:
    """Counts per bin [edge, next edge), the last bin closed on both sides."""
    last = len(edges) - 2
    return [
        sum(1 for v in values if lo <= v < hi or (i == last and v == hi))
        for i, (lo, hi) in enumerate(pairwise(edges))
    ]


def age_group(age: int) -> str:
    return next((group for limit, group in AGE_GROUPS if age < limit), "65+")


GROUPS = {
    "sex": lambda p: p["sex"] or "(none)",
    "race_ethnicity": lambda p: p["race_ethnicity"] or "(none)",
    "age_group": lambda p: age_group(p["age"]),
}


def fact_skew(
    personas: list[dict[str, Any]], min_facts: int, share_points: float
) -> tuple[dict[str, float], dict[str, dict[str, dict[str, float]]], set[tuple[str, str, str]]]:
    """(overall category shares, shares per group, flags) by the report's stated rule."""
    whole = Counter(f["category"] for p in personas for f in p["facts"] or [])
    total = sum(whole.values())
    overall = {c: n / total for c, n in whole.items()}
    shares: dict[str, dict[str, dict[str, float]]] = {}
    flags = set()
    for name, key in GROUPS.items():
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for p in personas:
            counts[key(p)].update(f["category"] for f in p["facts"] or [])
        shares[name] = {}
        for group, cats in counts.items():
            n = sum(cats.values())
            if not n:
                continue
            shares[name][group] = {"facts": n, **{c: cats[c] / n for c in overall}}
            flags |= {
                (name, group, f"facts:{c}")
                for c in overall
                if n >= min_facts and abs(cats[c] / n - overall[c]) >= share_points
            }
    return overall, shares, flags


def trait_skew(
    personas: list[dict[str, Any]], min_personas: int, trait_sd: float
) -> tuple[dict[str, dict[str, dict[str, float]]], set[tuple[str, str, str]]]:
    """(mean trait per group, flags) by the report's stated rule (population SD)."""
    people = [p for p in personas if p["traits"] is not None]
    means: dict[str, dict[str, dict[str, float]]] = {}
    flags = set()
    for name, key in GROUPS.items():
        means[name] = {}
        for group in {key(p) for p in people}:
            mine = [p["traits"] for p in people if key(p) == group]
            means[name][group] = {t: statistics.fmean(x[t] for x in mine) for t in TRAITS}
            means[name][group]["n"] = len(mine)
            for t in TRAITS:
                values = [p["traits"][t] for p in people]
                sd = statistics.pstdev(values)
                d = (means[name][group][t] - statistics.fmean(values)) / sd if sd else 0.0
                if len(mine) >= min_personas and abs(d) >= trait_sd:
                    flags.add((name, group, t))
    return means, flags


def distinct_share(words: list[list[str]], n: int) -> float:
    """Distinct word n-grams / all word n-grams, over texts with at least n words."""
    grams = [tuple(w[i : i + n]) for w in words if len(w) >= n for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams)


def minhash(words: list[str]) -> Any:
    """datasketch's MinHash of a text with the dedup defaults (3-word shingles, 128, seed 1)."""
    m = MinHash(num_perm=128, seed=1, hashfunc=shingle_hash32)
    m.update_batch([" ".join(words[i : i + 3]) for i in range(len(words) - 2)] or [" ".join(words)])
    return m


def assert_lengths(stats: dict[str, Any], values: list[int]) -> None:
    """A length figure (n, mean, p10/p50/p90, max, histogram) describes exactly `values`."""
    assert (stats["n"], stats["max"]) == (len(values), max(values))
    assert stats["mean"] == pytest.approx(statistics.fmean(values), abs=0.0051)  # 2 decimals
    for q in (10, 50, 90):
        assert stats[f"p{q}"] == pytest.approx(percentile(values, q / 100), abs=1e-9)
    edges = stats["histogram"]["edges"]
    assert edges[0] == 0 and edges[-1] >= max(values)
    assert stats["histogram"]["counts"] == histogram(values, edges)


def planted_skew(release: Path, folder: Path) -> Path:
    """The release's personas four times over in `folder`, with a planted skew by sex.

    Female copies have only health facts and openness 0.9, Male copies keep their facts
    and have openness 0.1. Every persona is twice Female and twice Male, so only the sex
    groups differ from the whole (other groups sit exactly at the whole's means: no
    borderline flags).
    """
    personas = pq.read_table(release / "data" / "personas.parquet")
    planted = []
    for copy in range(4):
        female = copy % 2 == 0
        for p in personas.to_pylist():
            traits = {t: 0.5 for t in TRAITS} | (p["traits"] or {})
            planted.append(p | {
                "persona_id": f"{p['persona_id']}-{copy}", "sex": "Female" if female else "Male",
                "traits": traits | {"openness": 0.9 if female else 0.1},
                "facts": [f | {"category": "health"} if female else f for f in p["facts"]],
            })  # fmt: skip
    (folder / "data").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(planted, personas.schema), folder / "data" / "personas.parquet"
    )
    return folder
