"""Report figures about the text: distinct n-grams, MinHash similarity, lengths, openings.

Decisions:
- The text of a row is what dedup compares (`DedupConfig.text_fields`: persona narrative
  + fact statements, every conversation turn, document title + body), tokenised by
  `personafoundry.minhash` (NFKC, lower case, letters/digits), so "diverse" and
  "duplicate" are measured on the same words.
- distinct-n = distinct word n-grams / all word n-grams, over texts with at least n words
  (64-bit n-gram hashes; collisions are negligible at these sizes). Vocabulary = distinct
  words. Lengths are words per text.
- Mean pairwise Jaccard is the MinHash estimate (`minhash.estimated_jaccard`) over the
  dedup signatures (same shingle size, permutations and seed as `dedup`), on at most
  MAX_SIGNATURE_ROWS rows and MAX_PAIRS pairs: every pair when they fit, otherwise
  uniformly sampled pairs (seeded); `pairs_sampled` says which.
- Large tables are read as a hash-ordered sample of MAX_TEXT_ROWS rows (stable between
  regenerations); `sampled_rows` < `rows` says so. Turn counts and the first-turn
  share are exact SQL over all conversations.
- Same first turn: share of conversations whose first turn (lower-cased, whitespace
  collapsed) is also the first turn of another conversation.
- Embedding-based diversity is skipped: the project configures no embedding model.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from personafoundry import minhash as mh
from personafoundry.config import DedupConfig
from schemas import TABLES

MAX_TEXT_ROWS = 5_000
MAX_SIGNATURE_ROWS = 2_000
MAX_PAIRS = 100_000
LENGTH_BINS = 20
TEXT_TABLES = ("personas", "conversations", "documents")
FIRST_TURN_SQL = "lower(trim(regexp_replace(turns[1].text, '\\s+', ' ', 'g')))"


def distinct_n(texts: pa.Array, n: int, words: np.ndarray) -> tuple[float | None, int]:
    """(distinct / total word n-grams over texts with >= n words, distinct count).

    `words` is the word count of every text (from `shingle_hashes(texts, 1)`).
    """
    hashes, offsets = mh.shingle_hashes(texts, n)
    keep = np.repeat(words >= n, np.diff(offsets))
    grams = hashes[keep]
    if not len(grams):
        return None, 0
    distinct = len(np.unique(grams))
    return round(distinct / len(grams), 6), distinct


def mean_pairwise_jaccard(texts: pa.Array, cfg: DedupConfig, seed: int = 0) -> dict[str, Any]:
    """Mean MinHash Jaccard over (sampled) pairs of texts that have shingles."""
    texts = texts.slice(0, MAX_SIGNATURE_ROWS)
    hashes, offsets = mh.shingle_hashes(texts, cfg.shingle_size)
    sigs = mh.signatures(hashes, offsets, cfg.num_perm, cfg.seed)[np.diff(offsets) > 0]
    n = len(sigs)
    if n < 2:
        return {"mean_pairwise_jaccard": None, "pairs": 0, "pairs_sampled": False}
    all_pairs = n * (n - 1) // 2
    if all_pairs <= MAX_PAIRS:
        i, j = np.triu_indices(n, 1)
        pairs, sampled = np.stack([i, j], axis=1), False
    else:
        rng = np.random.default_rng(seed)
        a = rng.integers(0, n, MAX_PAIRS)
        b = (a + rng.integers(1, n, MAX_PAIRS)) % n  # uniform over the other rows
        pairs, sampled = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), True
    est = mh.estimated_jaccard(sigs, sigs, pairs)
    return {
        "mean_pairwise_jaccard": round(float(est.mean()), 6),
        "pairs": len(pairs),
        "pairs_sampled": sampled,
        "signature_rows": n,
    }


def length_stats(words: np.ndarray) -> dict[str, Any]:
    if not len(words):
        return {"n": 0}
    edges = np.unique(np.linspace(0, max(int(words.max()), 1), LENGTH_BINS + 1).round())
    counts, edges = np.histogram(words, bins=edges)
    return {
        "n": len(words),
        "mean": round(float(words.mean()), 2),
        "p10": float(np.percentile(words, 10)),
        "p50": float(np.percentile(words, 50)),
        "p90": float(np.percentile(words, 90)),
        "max": int(words.max()),
        "histogram": {"edges": [int(e) for e in edges], "counts": counts.tolist()},
    }


def _sample(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> pa.Table:
    pk = TABLES[table].primary_key
    cols = ", ".join(f'"{c}"' for c in dict.fromkeys([pk, *columns]))
    return con.sql(
        f'SELECT {cols} FROM "{table}" ORDER BY hash("{pk}"), "{pk}" LIMIT {MAX_TEXT_ROWS}'
    ).to_arrow_table()


def diversity_figures(con: duckdb.DuckDBPyConnection, config: dict[str, Any]) -> dict[str, Any]:
    """Per text table: distinct-1/2/3, vocabulary, pairwise Jaccard, lengths."""
    from personafoundry.dedup import table_text

    cfg = DedupConfig.model_validate(config.get("dedup") or {})
    out: dict[str, Any] = {"tables": {}}
    for table in TEXT_TABLES:
        rows = con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]
        fields = cfg.text_fields.get(table)
        if not rows or not fields:
            continue
        extra = ["doc_type"] if table == "documents" else []
        sample = _sample(con, table, [f.partition(".")[0] for f in fields] + extra)
        texts = table_text(sample, fields)
        _, word_offsets = mh.shingle_hashes(texts, 1)
        words = np.diff(word_offsets)
        entry: dict[str, Any] = {"rows": rows, "sampled_rows": sample.num_rows}
        for n in (1, 2, 3):
            entry[f"distinct_{n}"], count = distinct_n(texts, n, words)
            if n == 1:
                entry["vocabulary"] = count
        entry.update(mean_pairwise_jaccard(texts, cfg))
        entry["words"] = length_stats(words)
        if table == "documents":
            types = np.array(sample.column("doc_type").to_pylist(), dtype=object)
            entry["words_by_doc_type"] = {
                t: length_stats(words[types == t]) for t in sorted(set(types.tolist()))
            }
        out["tables"][table] = entry
    out["conversations"] = _conversation_figures(con)
    out["embedding"] = "skipped: no embedding model is configured in this project"
    return out


def _conversation_figures(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    n = con.execute("SELECT count(*) FROM conversations").fetchall()[0][0]
    if not n:
        return {"conversations": 0}
    turns = con.execute("SELECT len(turns) AS t FROM conversations").fetchnumpy()["t"]
    first = f"WITH c AS (SELECT {FIRST_TURN_SQL} AS t, count(*) AS k FROM conversations "
    first += "WHERE len(turns) > 0 GROUP BY t) "
    shared = con.execute(first + "SELECT coalesce(sum(k) FILTER (k > 1), 0) FROM c").fetchall()[0]
    top_text, top = con.execute(first + "SELECT t, k FROM c ORDER BY k DESC, t LIMIT 1").fetchall()[
        0
    ]
    return {
        "conversations": n,
        "same_first_turn_share": round(shared[0] / n, 6),
        "most_common_first_turn": {"count": top, "text": (top_text or "")[:200]},
        "turns": length_stats(np.asarray(turns)),
    }
