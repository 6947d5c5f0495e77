"""Plan private documents per persona: type, facts to reveal, timestamp, counterpart.

The planner is pure and deterministic (same seed and inputs, same plan) and decides
everything the generator must not: which facts each document reveals, so benchmark
authors know exactly where every answer lives.

Decisions:
- Holdout first: `holdout_facts` facts per persona are never planned; they become the
  negative probes ("unknown"). The rest are the targets.
- Coverage: targets are placed greedily into `per_persona` documents of at most
  `facts_per_doc` facts, preferring a type whose catalog `categories` match the fact's
  category, then the least-loaded document. `cover_all` adds documents until every target
  fits; otherwise facts that do not fit are reported in `dropped` (`no_capacity`).
- Repeats and implication: `repeat_share` of the planned facts get a second document
  (explicit), `implied_share` are planned as implied only (hinted, never stated), so a
  benchmark has easy, redundant and hard facts.
- Changed facts (temporal): a fact is outdated when it has a `valid_to`, or, when the
  persona table carries no validity fields, when its statement reads as past ("used to",
  "previously", "until 2019", "no longer"); its successor is the current fact of the same
  category. Old and new never share a document; documents with outdated facts come
  first on the persona's timeline and documents with current facts last.
- Timeline: timestamps are drawn uniformly over `timeline_days` before `timeline_end`
  (UTC), sorted, then given to documents in that temporal order.
- Counterparts: types with `counterpart = required` always name another person: a persona
  the conversation pairs link to this one, else another persona of the table, else
  nobody (the generator invents one); `optional` types do so with `counterpart_share`.
- Distractors: noise documents that mention a fact of another persona in a category this
  persona also has ("similar but different"), attributed to someone else.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from personafoundry.config import DocumentsConfig
from personafoundry.doc_catalog import DocType, load_catalog, select_types
from personafoundry.ids import make_id, stable_hash

PLAN_SCHEMA = pa.schema(
    [
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("persona_id", pa.string(), nullable=False),
        pa.field("doc_type", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),  # "facts" | "distractor"
        pa.field("seq", pa.int16(), nullable=False),  # position on the persona's timeline
        pa.field("timestamp", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("fact_ids", pa.list_(pa.string()), nullable=False),
        pa.field("implied_fact_ids", pa.list_(pa.string()), nullable=False),
        pa.field("counterpart_id", pa.string()),
        pa.field("counterpart_name", pa.string()),
        pa.field("distractor_fact_id", pa.string()),
        pa.field("distractor_text", pa.string()),
    ]
)
DROPPED_SCHEMA = pa.schema(
    [
        pa.field("persona_id", pa.string()),
        pa.field("fact_id", pa.string()),
        pa.field("reason", pa.string()),
    ]
)
OUTDATED_CUE = re.compile(
    r"\b(used to|formerly|previously|no longer|former|until (?:19|20)\d\d|back in (?:19|20)\d\d)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PlanResult:
    """Planned documents (`PLAN_SCHEMA`), facts not planned with a reason, counts."""

    table: pa.Table
    dropped: pa.Table
    stats: dict[str, int]


def fact_changes(facts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(outdated fact_id, current fact_id) pairs of one persona; see the module docstring."""
    has_validity = any("valid_to" in f for f in facts)
    if has_validity:
        old = [f for f in facts if f.get("valid_to")]
        is_current = [f for f in facts if not f.get("valid_to")]
    else:
        old = [f for f in facts if OUTDATED_CUE.search(f["statement"] or "")]
        is_current = [f for f in facts if not OUTDATED_CUE.search(f["statement"] or "")]
    pairs, used = [], set()
    for fact in old:
        same = [
            c for c in is_current if c["category"] == fact["category"] and c["fact_id"] not in used
        ]
        if has_validity:  # prefer the fact that starts when the old one ends
            end = fact["valid_to"]
            same.sort(key=lambda c: (c.get("valid_from") is None, _gap(c.get("valid_from"), end)))
        if same:
            used.add(same[0]["fact_id"])
            pairs.append((fact["fact_id"], same[0]["fact_id"]))
    return pairs


def _gap(start: Any, end: Any) -> int:
    return abs(start - end) if isinstance(start, int) and isinstance(end, int) else 0


def partner_map(pairs: pa.Table | None) -> dict[str, list[str]]:
    """persona_id -> linked persona ids, from a table with `persona_ids` (or two id columns)."""
    links: dict[str, list[str]] = {}
    if pairs is None or pairs.num_rows == 0:
        return links
    if "persona_ids" in pairs.column_names:
        groups = pairs.column("persona_ids").to_pylist()
    else:
        cols = [c for c in pairs.column_names if c.startswith("persona") and c.endswith("_id")]
        groups = [list(row) for row in zip(*(pairs.column(c).to_pylist() for c in cols[:2]))]
    for group in groups:
        for a in group or []:
            for b in group or []:
                if a and b and a != b and b not in links.setdefault(a, []):
                    links[a].append(b)
    return links


def _choose_types(
    rng: random.Random, types: dict[str, DocType], facts: list[dict[str, Any]], n: int
) -> list[str]:
    """n type names: best category match first, cycling so one persona sees varied types."""
    cats = [f["category"] for f in facts]
    order = sorted(
        types, key=lambda t: (-sum(c in types[t].categories for c in cats), rng.random())
    )
    return [order[i % len(order)] for i in range(n)]


def _place(
    rng: random.Random,
    fact: dict[str, Any],
    docs: list[dict[str, Any]],
    types: dict[str, DocType],
    cap: int,
    avoid: set[int],
) -> int | None:
    """Index of the best document with room for `fact`, or None."""
    options = [i for i, d in enumerate(docs) if len(d["facts"]) < cap and i not in avoid]
    if not options:
        return None
    return max(
        options,
        key=lambda i: (
            fact["category"] in types[docs[i]["type"]].categories,
            -len(docs[i]["facts"]),
            rng.random(),
        ),
    )


def _assign_facts(
    rng: random.Random,
    targets: list[dict[str, Any]],
    changes: list[tuple[str, str]],
    docs: list[dict[str, Any]],
    types: dict[str, DocType],
    cfg: DocumentsConfig,
    implied: set[str],
) -> tuple[list[str], list[str]]:
    """Fill `docs[i]["facts"]`; returns (facts that did not fit, facts planned twice)."""
    old_ids = {o for o, _ in changes}
    new_ids = {n for _, n in changes}
    kind_of: dict[int, str | None] = dict.fromkeys(range(len(docs)))  # "old"/"new" once held
    ordered = sorted(targets, key=lambda f: (f["fact_id"] not in old_ids | new_ids, rng.random()))
    unplaced, placed = [], []
    for fact in ordered:
        kind = (
            "old" if fact["fact_id"] in old_ids else "new" if fact["fact_id"] in new_ids else None
        )
        avoid = {i for i, k in kind_of.items() if kind and k and k != kind}
        i = _place(rng, fact, docs, types, cfg.facts_per_doc, avoid)
        if i is None and cfg.cover_all:  # e.g. an outdated fact cannot share the current one's doc
            docs.append(
                {
                    "type": _choose_types(rng, types, [fact], 1)[0],
                    "facts": [],
                    "implied": [],
                    "order": 0,
                }
            )
            kind_of[len(docs) - 1] = None
            i = len(docs) - 1
        if i is None:
            unplaced.append(fact["fact_id"])
            continue
        docs[i]["facts"].append(fact["fact_id"])
        kind_of[i] = kind_of[i] or kind
        placed.append(fact)
    explicit = [f for f in placed if f["fact_id"] not in implied]
    n_repeat = round(cfg.repeat_share * len(explicit))
    repeated = []
    for fact in rng.sample(explicit, min(n_repeat, len(explicit))):
        kind = (
            "old" if fact["fact_id"] in old_ids else "new" if fact["fact_id"] in new_ids else None
        )
        avoid = {i for i, d in enumerate(docs) if fact["fact_id"] in d["facts"]}
        avoid |= {i for i, k in kind_of.items() if kind and k and k != kind}
        i = _place(rng, fact, docs, types, cfg.facts_per_doc, avoid)
        if i is not None:
            docs[i]["facts"].append(fact["fact_id"])
            kind_of[i] = kind_of[i] or kind
            repeated.append(fact["fact_id"])
    for i, kind in kind_of.items():
        docs[i]["order"] = {"old": -1, None: 0, "new": 1}[kind]
    return unplaced, repeated


def _timestamps(rng: random.Random, n: int, cfg: DocumentsConfig) -> list[datetime]:
    end = datetime.fromisoformat(cfg.timeline_end).replace(hour=20, tzinfo=UTC)
    span = cfg.timeline_days * 86400
    return sorted(end - timedelta(seconds=rng.randrange(span)) for _ in range(n))


def _dated(
    rng: random.Random,
    stamps: list[datetime],
    docs: list[dict[str, Any]],
    facts: list[dict[str, Any]],
    cfg: DocumentsConfig,
) -> list[datetime]:
    """Move documents of outdated facts back into the year the fact ended, when that year
    lies before the timeline window (a 2019 job shows up in 2018-2019 mail, not in 2024)."""
    ends = {f["fact_id"]: f.get("valid_to") for f in facts if f.get("valid_to")}
    window_start = datetime.fromisoformat(cfg.timeline_end).replace(tzinfo=UTC)
    window_start -= timedelta(days=cfg.timeline_days)
    moved = []
    for doc, stamp in zip(docs, stamps):
        years = [ends[f] for f in doc["facts"] if f in ends]
        ended = datetime(min(years), 7, 1, tzinfo=UTC) if years else window_start
        if doc["order"] < 0 and ended < window_start:
            lo = datetime(min(years) - 1, 1, 1, tzinfo=UTC)
            stamp = lo + timedelta(seconds=rng.randrange(545 * 86400))  # to 1 July
        moved.append(stamp)
    old = sorted(s for d, s in zip(docs, moved) if d["order"] < 0)
    return old + moved[len(old) :]


def _counterpart(
    rng: random.Random,
    doc_type: DocType,
    pid: str,
    links: dict[str, list[str]],
    others: list[str],
    cfg: DocumentsConfig,
) -> str | None:
    if doc_type.counterpart == "none":
        return None
    if doc_type.counterpart == "optional" and rng.random() >= cfg.counterpart_share:
        return None
    pool = links.get(pid) or others
    return rng.choice(pool) if pool else None


def _persona_plan(
    persona: dict[str, Any],
    everyone: dict[str, dict[str, Any]],
    links: dict[str, list[str]],
    types: dict[str, DocType],
    cfg: DocumentsConfig,
    rng_seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    pid = persona["persona_id"]
    rng = random.Random(int(stable_hash([rng_seed, "doc_plan", pid]), 16))
    facts = [f for f in persona.get("facts") or [] if f and f.get("fact_id")]
    if not facts:
        return [], [{"persona_id": pid, "fact_id": None, "reason": "no_facts"}], {}
    changes = fact_changes(facts)
    in_change = {x for pair in changes for x in pair}
    free = [f for f in facts if f["fact_id"] not in in_change]
    n_hold = min(cfg.holdout_facts, max(len(facts) - 1, 0), len(free))
    holdout = {f["fact_id"] for f in rng.sample(free, n_hold)}
    targets = [f for f in facts if f["fact_id"] not in holdout]
    n_docs = cfg.per_persona
    if cfg.cover_all:
        n_docs = max(n_docs, math.ceil(len(targets) / cfg.facts_per_doc))
    docs = [
        {"type": t, "facts": [], "implied": [], "order": 0}
        for t in _choose_types(rng, types, targets, n_docs)
    ]
    implied_pool = [f for f in targets if f["fact_id"] not in in_change]
    implied = {
        f["fact_id"] for f in rng.sample(implied_pool, round(cfg.implied_share * len(implied_pool)))
    }
    unplaced, repeated = _assign_facts(rng, targets, changes, docs, types, cfg, implied)
    for d in docs:
        d["implied"] = [f for f in d["facts"] if f in implied]
    docs = [d for d in docs if d["facts"]]  # a persona with few facts gets fewer documents
    others = sorted(p for p in everyone if p != pid)
    ranked = sorted(range(len(docs)), key=lambda i: (docs[i]["order"], rng.random()))
    stamps = _dated(rng, _timestamps(rng, len(docs), cfg), [docs[i] for i in ranked], facts, cfg)
    rows = []
    for seq, i in enumerate(ranked):
        d = docs[i]
        cp = _counterpart(rng, types[d["type"]], pid, links, others, cfg)
        rows.append(
            _row(
                pid,
                seq,
                d["type"],
                "facts",
                stamps[seq],
                d["facts"],
                d["implied"],
                cp,
                everyone,
                rng_seed,
            )
        )
    rows += _distractors(rng, persona, facts, everyone, links, types, cfg, rng_seed, len(rows))
    dropped = [{"persona_id": pid, "fact_id": f, "reason": "holdout"} for f in sorted(holdout)]
    dropped += [{"persona_id": pid, "fact_id": f, "reason": "no_capacity"} for f in unplaced]
    stats = {
        "facts": len(facts),
        "facts_planned": len(targets) - len(unplaced),
        "facts_repeated": len(repeated),
        "facts_implied": len(implied - set(unplaced)),
        "holdout": len(holdout),
        "no_capacity": len(unplaced),
        "changes": len(changes),
    }
    return rows, dropped, stats


def _distractors(
    rng: random.Random,
    persona: dict[str, Any],
    facts: list[dict[str, Any]],
    everyone: dict[str, dict[str, Any]],
    links: dict[str, list[str]],
    types: dict[str, DocType],
    cfg: DocumentsConfig,
    rng_seed: int,
    start: int,
) -> list[dict[str, Any]]:
    if not cfg.distractors_per_persona:  # the pool scans every persona's facts: skip it
        return []
    pid = persona["persona_id"]
    cats = {f["category"] for f in facts}
    mine = {f["statement"].strip().lower() for f in facts}
    pool = [
        (o, f)
        for o in sorted(everyone)
        if o != pid
        for f in everyone[o].get("facts") or []
        if f and f["category"] in cats and f["statement"].strip().lower() not in mine
    ]
    social = sorted(t for t in types if types[t].counterpart != "none")
    rows = []
    for k, (other, fact) in enumerate(
        rng.sample(pool, min(cfg.distractors_per_persona, len(pool)))
    ):
        doc_type = rng.choice(social or sorted(types))
        stamp = _timestamps(rng, 1, cfg)[0]
        row = _row(pid, start + k, doc_type, "distractor", stamp, [], [], other, everyone, rng_seed)
        row["distractor_fact_id"] = fact["fact_id"]
        row["distractor_text"] = fact["statement"]
        rows.append(row)
    return rows


def _row(
    pid: str,
    seq: int,
    doc_type: str,
    role: str,
    stamp: datetime,
    facts: list[str],
    implied: list[str],
    counterpart: str | None,
    everyone: dict[str, dict[str, Any]],
    seed: int,
) -> dict[str, Any]:
    return {
        "document_id": make_id("doc", seed, pid, seq, doc_type, role),
        "persona_id": pid,
        "doc_type": doc_type,
        "role": role,
        "seq": seq,
        "timestamp": stamp,
        "fact_ids": list(facts),
        "implied_fact_ids": list(implied),
        "counterpart_id": counterpart,
        "counterpart_name": everyone[counterpart].get("name") if counterpart else None,
        "distractor_fact_id": None,
        "distractor_text": None,
    }


def plan_documents(
    personas: pa.Table, cfg: DocumentsConfig, *, rng_seed: int, pairs: pa.Table | None = None
) -> PlanResult:
    """Decide each persona's documents: type, facts revealed, timestamp, counterpart.

    Input columns: `schemas/personas.py` (uses `persona_id`, `name`, `facts`; optional
    `valid_from`/`valid_to` inside facts). `pairs`: any table with `persona_ids` (list) or
    two `persona*_id` columns, e.g. conversations.
    Output columns: `PLAN_SCHEMA`; `dropped`: `persona_id`, `fact_id`, `reason`
    (`holdout` | `no_capacity` | `no_facts`).
    """
    types = select_types(load_catalog(cfg.catalog_path), cfg.doc_types)
    cols = [c for c in ("persona_id", "name", "facts") if c in personas.column_names]
    everyone = {r["persona_id"]: r for r in personas.select(cols).to_pylist()}
    links = partner_map(pairs)
    rows, dropped = [], []
    stats: dict[str, int] = {"personas": len(everyone)}
    for persona in everyone.values():
        p_rows, p_dropped, p_stats = _persona_plan(persona, everyone, links, types, cfg, rng_seed)
        rows += p_rows
        dropped += p_dropped
        for key, value in p_stats.items():
            stats[key] = stats.get(key, 0) + value
    stats["documents"] = sum(r["role"] == "facts" for r in rows)
    stats["distractors"] = sum(r["role"] == "distractor" for r in rows)
    return PlanResult(
        pa.Table.from_pylist(rows, schema=PLAN_SCHEMA),
        pa.Table.from_pylist(dropped, schema=DROPPED_SCHEMA),
        stats,
    )
