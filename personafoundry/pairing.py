"""Pair personas for conversations and give each pair a scenario from `seeds/scenarios.toml`.

Decisions:
- Matching is greedy in `per_persona` rounds: each round takes candidate pairs best
  score first (ties by seeded draw) while both personas are free in that round and short
  of `per_persona` conversations, so appearances spread evenly. Leftovers are paired in a
  final pass without the one-per-round rule; whoever is still short is reported in
  `dropped` (reason `no_partner`), never silently skipped.
- Policies score a candidate pair; ties break by a seeded random draw:
  `random` (draw only), `similar` (Jaccard of fact categories plus Jaccard of fact content
  words: shared interests), `contrasting` (age gap, Big Five distance, other state,
  unshared interests), `same_state` (same state first, then random; a pair from different
  states is flagged `policy_met = false`).
- A pair needs at least one eligible scenario (`min_age` for both, `same_state`,
  `employed` = both have an occupation); a pair with none is never formed. Among
  eligible scenarios the least used so far wins, ties by seeded draw, so the catalog is
  covered evenly.
- Each persona compares at most `MAX_CANDIDATES` (seeded sample) partners, so pairing
  stays fast on large tables; small tables see every candidate.
- The same two personas never meet twice unless `allow_repeat_pairs`; the first speaker
  is drawn at random.
- With `target` accepted conversations, the plan holds ceil(target x (1 + reserve_share))
  pairs (`wanted_pairs`): the target plus reserves the conversations stage starts only
  when earlier pairs fail. `per_persona` then gives way to the fewest rounds whose pairs
  reach that count (more rounds only while the plan still grows, e.g. when some personas
  fit no scenario). The plan keeps `wanted_pairs` of them level by level in plan order
  (pairs of personas not yet kept, then of personas kept once, ...), so a persona appears
  in more conversations only when the target needs it, and the first pairs (the first
  conversation shards') spread over as many personas as they can. Why not keep
  `per_persona` as a floor: a target of 10 over 1,000 personas would plan 500 pairs to
  start 15. Personas short of the rounds are `dropped` only when the plan falls short of
  `wanted_pairs`.
- `conversation_id` = make_id("conv", seed, sorted persona ids, scenario id, occurrence).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from personafoundry.config import ConverseConfig
from personafoundry.conversation_critics import content_stems
from personafoundry.ids import make_id
from personafoundry.scenarios import Scenario, eligible, load_scenarios

__all__ = ["PAIRS_SCHEMA", "PairingResult", "Scenario", "load_scenarios", "pair_personas",
           "wanted_pairs"]  # fmt: skip

MAX_CANDIDATES = 256
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
PAIRS_SCHEMA = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("persona_ids", pa.list_(pa.string()), nullable=False),
        pa.field("scenario_id", pa.string(), nullable=False),
        pa.field("scenario", pa.string(), nullable=False),
        pa.field("policy", pa.string(), nullable=False),
        pa.field("policy_met", pa.bool_(), nullable=False),
        pa.field("pair_score", pa.float64(), nullable=False),
    ]
)


@dataclass(frozen=True)
class PairingResult:
    table: pa.Table
    dropped: pa.Table
    stats: dict[str, int]


def _profile(row: dict[str, Any]) -> dict[str, Any]:
    facts = row.get("facts") or []
    traits = row.get("traits") or {}
    names = set((row.get("name") or "").lower().split())
    return {
        "age": row.get("age"),
        "state": row.get("state"),
        "employed": bool(row.get("occupation")),
        "categories": {f["category"] for f in facts},
        "stems": set().union(set(), *(content_stems(f["statement"], names) for f in facts)),
        "traits": [float(traits.get(t) or 0.5) for t in TRAITS],
        "name": (row.get("name") or "").split()[0] if row.get("name") else row["persona_id"],
    }


def _jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def pair_score(policy: str, p: dict[str, Any], q: dict[str, Any]) -> float:
    """Higher is a better match under `policy` (0 for `random`)."""
    if policy == "similar":
        return _jaccard(p["categories"], q["categories"]) + _jaccard(p["stems"], q["stems"])
    if policy == "contrasting":
        age_gap = abs((p["age"] or 40) - (q["age"] or 40)) / 60
        distance = math.dist(p["traits"], q["traits"]) / math.sqrt(len(TRAITS))
        other_state = 0.5 * (p["state"] != q["state"])
        return age_gap + distance + other_state + 0.5 * (1 - _jaccard(p["stems"], q["stems"]))
    if policy == "same_state":
        return float(p["state"] is not None and p["state"] == q["state"])
    return 0.0


def _pk(a: str, b: str) -> tuple[str, str]:
    """The unordered pair {a, b} as a dict key (cheaper than a frozenset)."""
    return (a, b) if a < b else (b, a)


def _fit_check(
    profiles: dict[str, dict[str, Any]], scenarios: list[Scenario]
) -> Callable[[str, str], bool]:
    """`fit(p, q)`: some scenario suits both personas.

    Eligibility reads only each persona's age against the catalog's `min_age`s, whether it
    is employed and whether the two share a state; personas alike in those answer alike,
    so the answer is computed once per (class of p, class of q, same state) and then looked
    up: the candidate scan asks it about 100k times per round on 500 personas.
    """
    thresholds = sorted({s.min_age for s in scenarios})
    cls = {
        pid: (len(thresholds) if p["age"] is None else sum(p["age"] >= t for t in thresholds),
              p["employed"])
        for pid, p in profiles.items()
    }  # fmt: skip
    state = {pid: p["state"] for pid, p in profiles.items()}
    answers: dict[tuple, bool] = {}

    def fit(p: str, q: str) -> bool:
        sp = state[p]
        key = (cls[p], cls[q], sp is not None and sp == state[q])
        found = answers.get(key)
        if found is None:
            found = answers[key] = any(eligible(s, profiles[p], profiles[q]) for s in scenarios)
        return found

    return fit


def _match(
    ids: list[str], profiles: dict[str, dict[str, Any]], scenarios: list[Scenario],
    cfg: ConverseConfig, rng: random.Random, per_persona: int,
) -> list[tuple[str, str, float]]:  # fmt: skip
    """Greedy rounds; returns (persona, partner, policy score) triples."""
    need = dict.fromkeys(ids, per_persona)
    met: Counter[tuple[str, str]] = Counter()
    tiebreak: dict[tuple[str, str], float] = {}
    scores: dict[tuple[str, str], float] = {}  # pair_score is symmetric: one per pair

    def key(pid: str, q: str) -> tuple[float, float]:
        pq = _pk(pid, q)
        if pq not in tiebreak:  # drawn when first seen: the draw order fixes the plan
            tiebreak[pq] = rng.random()
            scores[pq] = pair_score(cfg.pairing, profiles[pid], profiles[q])
        return scores[pq], tiebreak[pq]

    fit = _fit_check(profiles, scenarios)
    repeat = cfg.allow_repeat_pairs

    def allowed(pid: str, q: str) -> bool:
        return (repeat or not met.get(_pk(pid, q))) and fit(pid, q)

    pairs: list[tuple[str, str, float]] = []
    for strict in [True] * per_persona + [False]:
        busy: set[str] = set()
        edges = set()
        open_ = [q for q in ids if need[q] > 0]  # `need` holds still while edges are listed
        for pid in open_:
            free = [q for q in open_ if q != pid]
            if len(free) > MAX_CANDIDATES:  # bound the O(n^2) scan on large tables
                free = rng.sample(free, MAX_CANDIDATES)
            for q in free:
                pq = (pid, q) if pid < q else (q, pid)
                if (repeat or not met.get(pq)) and fit(pid, q):
                    edges.add(pq)
        # greedy matching: best-scored edges first, each persona once per strict round
        # sorted(edges) first: key() draws tie-breaks from rng, and set order varies by process
        listed = sorted(edges)
        keys = [key(a, b) for a, b in listed]
        for i in sorted(range(len(listed)), key=keys.__getitem__, reverse=True):
            a, b = listed[i]
            if not (need[a] and need[b]) or (strict and (a in busy or b in busy)):
                continue
            if repeat or not met.get((a, b)):  # fit(a, b) holds: (a, b) is an edge
                pairs.append((a, b, scores[a, b]))
                met[a, b] += 1
                need[a] -= 1
                need[b] -= 1
                busy.update((a, b))
    _repair(pairs, need, allowed, fit, met, lambda p, q: key(p, q)[0])
    return pairs


def _repair(
    pairs: list[tuple[str, str, float]], need: dict[str, int],
    allowed: Callable[[str, str], bool], fit: Callable[[str, str], bool],
    met: Counter[tuple[str, str]], score: Callable[[str, str], float],
) -> None:  # fmt: skip
    """Give short personas X, Y a slot by splitting a pair (U, V) into (X, U) + (Y, V).

    Greedy rounds can strand two personas that already met; one swap fixes most cases.
    X may equal Y when it is short by two or more.
    """
    short = [p for p in need if need[p] > 0]
    # a persona no scenario suits with anyone (a child, say) can take no swap: skip its scans
    hopeful = {x for x in short if any(fit(x, a) for a in need if a != x)}
    for x in short:
        for y in short:
            if need[x] == 0 or need[y] == 0 or (x == y and need[x] < 2):
                continue
            if x not in hopeful or y not in hopeful:
                continue
            swap = next(
                (
                    (k, a, b)
                    for k, (u, v, _) in enumerate(pairs)
                    if not {u, v} & {x, y}
                    for a, b in ((u, v), (v, u))
                    if allowed(x, a) and allowed(y, b)
                ),
                None,
            )
            if swap is None:
                continue
            k, a, b = swap
            met[_pk(*pairs[k][:2])] -= 1
            pairs[k] = (x, a, score(x, a))
            pairs.append((y, b, score(y, b)))
            met.update([_pk(x, a), _pk(y, b)])
            need[x] -= 1
            need[y] -= 1


def wanted_pairs(cfg: ConverseConfig) -> int | None:
    """Pairs to plan for `cfg.target`: ceil(target x (1 + reserve_share)); None without one."""
    if cfg.target is None:
        return None
    # rounded first: 10 x 1.1 is 11.000000000000002 in floats, and must plan 11 pairs
    return math.ceil(round(cfg.target * (1 + cfg.reserve_share), 6))


def _plan(
    ids: list[str], profiles: dict[str, dict[str, Any]], catalog: list[Scenario],
    cfg: ConverseConfig, rng_key: str,
) -> tuple[int, list[tuple[str, str, float]], random.Random]:  # fmt: skip
    """Per-persona rounds, matched triples and the rng to go on drawing scenarios with.

    Without a target: `per_persona` rounds. With one: the fewest rounds whose plan holds
    `wanted_pairs` (more while a bigger plan still grows, e.g. when some personas fit no
    scenario), cut to `wanted_pairs` pairs with the fewest appearances per persona.
    """

    def attempt(rounds: int) -> tuple[int, list[tuple[str, str, float]], random.Random]:
        rng = random.Random(rng_key)  # each attempt draws the same sequence
        triples = _match(ids, profiles, catalog, cfg, rng, rounds) if rounds and catalog else []
        return rounds, triples, rng

    wanted = wanted_pairs(cfg)
    if wanted is None:
        return attempt(cfg.per_persona)
    most = len(ids) - 1 if not cfg.allow_repeat_pairs else math.inf  # partners per persona
    best = attempt(-(-2 * wanted // len(ids)) if ids else 0)  # ceil(2 x wanted / personas)
    while 0 < len(best[1]) < wanted and best[0] < most:
        grown = math.ceil(best[0] * wanted / len(best[1]))
        bigger = attempt(int(min(max(best[0] + 1, grown), most)))
        if len(bigger[1]) <= len(best[1]):
            break
        best = bigger
    return best[0], _fewest_appearances(best[1], wanted), best[2]


def _fewest_appearances(
    triples: list[tuple[str, str, float]], wanted: int
) -> list[tuple[str, str, float]]:
    """`wanted` triples taken level by level in plan order: first pairs of personas not yet
    taken, then of personas taken at most once, ... (greedy rounds can strand a persona
    whose later pair, appended by the leftover pass, a plain cut would lose)."""
    count: Counter[str] = Counter()
    kept, left, level = [], list(triples), 0
    while len(kept) < wanted and left:
        level += 1
        rest = []
        for t in left:
            if len(kept) < wanted and count[t[0]] < level and count[t[1]] < level:
                kept.append(t)
                count.update(t[:2])
            else:
                rest.append(t)
        left = rest
    return kept


def pair_personas(
    personas: pa.Table, cfg: ConverseConfig, *, rng_seed: int,
    scenarios: list[Scenario] | None = None,
) -> PairingResult:  # fmt: skip
    """Match personas into conversation pairs and give each a scenario; deterministic.

    Input columns: `schemas/personas.py` (uses persona_id, name, age, state, occupation,
    traits, facts).
    Output columns: `PAIRS_SCHEMA` (conversation_id, persona_ids with the first speaker
    first, scenario_id, scenario text, policy, policy_met, pair_score). `dropped` lists
    personas left short of `per_persona` (with a target: of the rounds the target needs,
    when the plan falls short of `wanted_pairs`) with reason `no_partner` and how many are
    missing. `stats` hold `per_persona` (the rounds planned) and, with a target,
    `pairs_wanted`.
    """
    catalog = scenarios if scenarios is not None else load_scenarios()
    if cfg.scenarios:
        catalog = [s for s in catalog if s.scenario_id in set(cfg.scenarios)]
    rows = personas.to_pylist()
    profiles = {r["persona_id"]: _profile(r) for r in rows}
    ids = sorted(profiles)
    rounds, triples, rng = _plan(ids, profiles, catalog, cfg, f"pairing:{rng_seed}:{cfg.pairing}")
    used: Counter[str] = Counter()
    seen: Counter[tuple[str, ...]] = Counter()
    out = []
    for a, b, score in triples:
        p, q = profiles[a], profiles[b]
        options = [s for s in catalog if eligible(s, p, q)]
        scenario = min(options, key=lambda s: (used[s.scenario_id], rng.random()))
        used[scenario.scenario_id] += 1
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        key = tuple(sorted((a, b)))
        met_policy = cfg.pairing != "same_state" or score > 0
        out.append(
            {
                "conversation_id": make_id("conv", rng_seed, key, scenario.scenario_id, seen[key]),
                "persona_ids": [first, second],
                "scenario_id": scenario.scenario_id,
                "scenario": scenario.text(profiles[first]["name"], profiles[second]["name"]),
                "policy": cfg.pairing,
                "policy_met": met_policy,
                "pair_score": float(score),
            }
        )
        seen[key] += 1
    count = Counter(pid for a, b, _ in triples for pid in (a, b))
    wanted = wanted_pairs(cfg)
    short = [
        {"persona_id": pid, "reason": "no_partner", "missing": rounds - count[pid]}
        for pid in ids
        if count[pid] < rounds and (wanted is None or len(out) < wanted)
    ]
    dropped = pa.Table.from_pylist(
        short,
        pa.schema([("persona_id", pa.string()), ("reason", pa.string()), ("missing", pa.int64())]),
    )
    stats = {"personas": len(ids), "pairs": len(out), "short_personas": len(short)}
    stats |= {"per_persona": rounds} | ({} if wanted is None else {"pairs_wanted": wanted})
    stats |= {f"scenario.{k}": v for k, v in sorted(used.items())}
    return PairingResult(pa.Table.from_pylist(out, PAIRS_SCHEMA), dropped, stats)
