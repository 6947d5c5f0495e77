"""Dedup benchmark: throughput vs datasketch, recall/precision per edit rate, 1M-document scale.

Prints one JSON object on stdout. The corpus is generated (seeded): ~150-word documents
from a Zipf vocabulary of pseudo-words with capitals and punctuation, plus
- planted near-duplicates of distinct originals at several edit rates: 1/3/5/10 % word
  substitutions, a reordering (a 20-word block moved), 5 % word insertions;
- "related but distinct" pairs sharing a template (alternating 10-word template and fill
  blocks), which a dedup must keep.
Ground truth is the exact Jaccard of word n-gram sets, computed by a separate pure-Python
normaliser. Recall counts planted pairs with true Jaccard >= threshold that end up in one
cluster; precision is the share of reported (removed, kept) pairs whose true Jaccard is
>= threshold. `--quick` runs the 20,000-document corpus only; the default also runs
1,000,000 documents in a child process (wall time and its peak RSS). `--curve` adds the
ideal recall/precision over shingle sizes and thresholds used to choose the defaults.

Run: .venv/bin/python benchmarks/dedup.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personafoundry import minhash as mh
from personafoundry.config import DedupConfig
from personafoundry.dedup import dedup_table

VOCAB = 30_000
WORDS = 150
EDITS = {"sub1": 0.01, "sub3": 0.03, "sub5": 0.05, "sub10": 0.10, "reorder": 0.0, "insert5": 0.05}
COPY_SHARE = 0.2  # share of the corpus that is planted copies
RELATED_SHARE = 0.05  # share that is template-related distinct documents
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]


def vocabulary(rng: np.random.Generator) -> pa.Array:
    """VOCAB distinct pseudo-words, then their Capitalised and "word," / "word." forms."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCAB:
        w = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(1, 4))))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return pa.array(words + [w.capitalize() for w in words] + [w + "," for w in words]
                    + [w + "." for w in words])  # fmt: skip


def sample_words(rng: np.random.Generator, n: int) -> np.ndarray:
    """Word ranks from a Zipf(1.07) law over the vocabulary, like English text."""
    p = 1.0 / np.arange(1, VOCAB + 1) ** 1.07
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n)).astype(np.int32)


def _positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(document, position in document) of every word of a flat batch."""
    doc = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return doc, np.arange(int(lengths.sum())) - starts[doc]


def gather(
    flat: np.ndarray, lengths: np.ndarray, docs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The words of documents `docs` of a flat corpus, as a new flat batch."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    sub = lengths[docs]
    doc, pos = _positions(sub)
    return flat[starts[docs][doc] + pos], sub


def edit(rng: np.random.Generator, flat: np.ndarray, lengths: np.ndarray, kind: str):
    """Near-copies (or related documents) of a flat batch under one edit kind, vectorised."""
    doc, pos = _positions(lengths)
    flat = flat.copy()
    if kind == "related":  # every other 10-word block rewritten: a distinct document
        chosen = (pos // 10) % 2 == 1
        flat[chosen] = sample_words(rng, int(chosen.sum()))
        return flat, lengths
    if kind.startswith("sub"):  # exactly round(rate * length) >= 1 distinct positions
        need = np.maximum(1, np.round(EDITS[kind] * lengths)).astype(np.int64)
        order = np.lexsort((rng.random(len(flat)), doc))
        rank = np.empty(len(flat), np.int64)
        rank[order] = pos  # order is grouped by document: its k-th entry there has rank k
        chosen = rank < need[doc]
        flat[chosen] = sample_words(rng, int(chosen.sum()))
        return flat, lengths
    if kind == "insert5":
        extra = np.round(0.05 * lengths).astype(np.int64)
        new_doc = np.repeat(np.arange(len(lengths)), extra)
        keys = np.concatenate(
            [pos.astype(float), rng.random(len(new_doc)) * lengths[new_doc] - 0.5]
        )
        docs = np.concatenate([doc, new_doc])
        words = np.concatenate([flat, sample_words(rng, len(new_doc))])
        return words[np.lexsort((keys, docs))], lengths + extra
    start = rng.integers(0, lengths - 20)[doc]  # reorder: move a 20-word block elsewhere
    dest = rng.integers(0, lengths - 20)[doc]
    inside = (pos >= start) & (pos < start + 20)
    rest_rank = np.where(pos >= start + 20, pos - 20, pos).astype(float)
    keys = np.where(inside, dest - 0.5 + (pos - start) / 40, rest_rank)
    return flat[np.lexsort((keys, doc))], lengths


def render(vocab: pa.Array, flat: np.ndarray, lengths: np.ndarray, rng) -> pa.Array:
    """Texts from word ranks: ~6 % of words end a sentence, ~4 % carry a comma."""
    r = rng.random(len(flat))
    form = np.select([r < 0.90, r < 0.94], [0, 2], 3)  # 0 plain, 1 Capital, 2 comma, 3 period
    cap = np.zeros(len(flat), bool)
    cap[1:] = form[:-1] == 3
    form = np.where(cap & (form == 0), 1, form)
    words = vocab.take(pa.array(flat + VOCAB * form))
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    return pc.binary_join(pa.LargeListArray.from_arrays(offsets, words), " ")


def corpus(n: int, seed: int = 7) -> tuple[pa.Table, dict]:
    """A documents table of n rows and its plan: (original, copy, kind) per planted pair."""
    rng = np.random.default_rng(seed)
    vocab = vocabulary(rng)
    n_copies, n_related = int(n * COPY_SHARE), int(n * RELATED_SHARE)
    n_orig = n - n_copies - n_related
    lengths = rng.integers(WORDS - 30, WORDS + 31, size=n_orig)
    flat = sample_words(rng, int(lengths.sum()))
    sources = rng.choice(n_orig, size=n_copies + n_related, replace=False)
    kinds = np.array(
        [list(EDITS)[i % len(EDITS)] for i in range(n_copies)] + ["related"] * n_related
    )
    flats, lens, pairs, next_id = [flat], [lengths], [], n_orig
    for kind in [*EDITS, "related"]:
        src = sources[kinds == kind]
        f, ln = edit(rng, *gather(flat, lengths, src), kind)
        flats.append(f)
        lens.append(ln)
        pairs += [(int(a), next_id + i, kind) for i, a in enumerate(src)]
        next_id += len(src)
    flat, lengths = np.concatenate(flats), np.concatenate(lens)
    del flats
    starts = np.concatenate([[0], np.cumsum(lengths)])
    chunks = [
        render(vocab, flat[starts[s] : starts[min(s + 50_000, n)]], lengths[s : s + 50_000], rng)
        for s in range(0, n, 50_000)
    ]
    ids = pc.binary_join_element_wise(
        "doc_", pc.utf8_lpad(pa.array(np.arange(n)).cast(pa.string()), 16, "0"), ""
    )
    scores = rng.integers(1, 6, size=n).astype(np.float64)
    critic = pa.ListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32)),
        pa.StructArray.from_arrays(
            [pa.array(["overall"] * n), pa.array(scores), pa.array(scores >= 3)],
            ["expert", "score", "passed"],
        ),
    )
    table = pa.table({"document_id": ids, "title": pa.nulls(n, pa.string()),
                      "body": pa.chunked_array(chunks), "critic_scores": critic})  # fmt: skip
    return table, {"pairs": pairs}


_WORD = re.compile(r"[^0-9a-z]+")


def ngram_set(text: str, size: int) -> set[tuple[str, ...]]:
    """Independent reference shingling (ASCII corpus): lower, split on non-alnum, n-grams."""
    w = [t for t in _WORD.split(text.lower()) if t]
    if len(w) < size:
        return {tuple(w)} if w else set()
    return {tuple(w[i : i + size]) for i in range(len(w) - size + 1)}


def jaccard(a: str, b: str, size: int) -> float:
    x, y = ngram_set(a, size), ngram_set(b, size)
    return len(x & y) / len(x | y) if x or y else 0.0


def quality(table: pa.Table, plan: dict, result, cfg: DedupConfig) -> dict:
    """Recall and precision per edit kind (see module docstring)."""
    body = table["body"]
    ids = table["document_id"].to_pylist()
    row = {d: i for i, d in enumerate(ids)}
    kept_of = dict(zip(result.duplicates["item_id"].to_pylist(),
                       result.duplicates["kept_id"].to_pylist()))  # fmt: skip
    kind_of = {}
    per: dict[str, dict] = {}
    for src, dst, kind in plan["pairs"]:
        kind_of[frozenset((src, dst))] = kind
        j = jaccard(body[src].as_py(), body[dst].as_py(), cfg.shingle_size)
        found = kept_of.get(ids[dst]) == ids[src] or kept_of.get(ids[src]) == ids[dst]
        s = per.setdefault(kind, {"pairs": 0, "true": 0, "found_true": 0, "caught": 0, "j": []})
        s["pairs"] += 1
        s["j"].append(j)
        s["caught"] += found
        if j >= cfg.threshold:
            s["true"] += 1
            s["found_true"] += found
    reported: dict[str, list[int]] = {}
    for item, kept in kept_of.items():
        a, b = row[item], row[kept]
        kind = kind_of.get(frozenset((a, b)), "unplanted")
        ok = jaccard(body[a].as_py(), body[b].as_py(), cfg.shingle_size) >= cfg.threshold
        reported.setdefault(kind, []).append(ok)
    out = {}
    for kind, s in per.items():
        rep = reported.get(kind, [])
        out[kind] = {
            "recall": round(s["found_true"] / s["true"], 4) if s["true"] else None,
            "precision": round(sum(rep) / len(rep), 4) if rep else None,
            "planted_pairs": s["pairs"], "true_pairs": s["true"],
            "share_caught": round(s["caught"] / s["pairs"], 4),
            "mean_true_jaccard": round(float(np.mean(s["j"])), 3),
        }  # fmt: skip
    rep = reported.get("unplanted", [])
    out["unplanted"] = {
        "reported": len(rep),
        "precision": round(sum(rep) / len(rep), 4) if rep else None,
    }
    return out


def datasketch_baseline(texts: list[str], cfg: DedupConfig, bands: int, rows: int) -> float:
    """Seconds for text -> clusters with MinHash.bulk + MinHashLSH (same shingles and bands)."""
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    n = cfg.shingle_size
    shingles = [[" ".join(g).encode() for g in ngram_set(t, n)] for t in texts]
    sketches = MinHash.bulk(shingles, num_perm=cfg.num_perm, seed=cfg.seed)
    lsh = MinHashLSH(num_perm=cfg.num_perm, params=(bands, rows))
    with lsh.insertion_session() as session:
        for i, m in enumerate(sketches):
            session.insert(i, m)
    parent = list(range(len(texts)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in enumerate(sketches):
        for j in lsh.query(m):
            if j != i and m.jaccard(sketches[j]) >= cfg.threshold:
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
    clusters = {root(i) for i in range(len(texts))}
    assert clusters
    return time.perf_counter() - start


def curve(table: pa.Table, plan: dict, per_kind: int = 300) -> dict:
    """Ideal recall (share of planted copies with true J >= t) and the share of related
    distinct pairs with J >= t, per shingle size and threshold: what the defaults rest on."""
    body = table["body"]
    by_kind: dict[str, list[tuple[int, int]]] = {}
    for src, dst, kind in plan["pairs"]:
        if len(by_kind.setdefault(kind, [])) < per_kind:
            by_kind[kind].append((src, dst))
    out = {}
    for size in (1, 2, 3, 4, 5):
        js = {k: np.array([jaccard(body[a].as_py(), body[b].as_py(), size) for a, b in v])
              for k, v in by_kind.items()}  # fmt: skip
        out[f"n{size}"] = {
            f"t{t:.1f}": {k: round(float((j >= t).mean()), 3) for k, j in js.items()}
            for t in (0.5, 0.6, 0.7, 0.8, 0.9)
        }
        out[f"n{size}"]["mean_j"] = {k: round(float(j.mean()), 3) for k, j in js.items()}
    return out


def scale_generate(n: int, path: Path) -> None:
    """Write an n-document corpus to Parquet (its own process: generation memory stays out)."""
    table, _ = corpus(n)
    pq.write_table(table, path)


def scale_run(path: Path) -> dict:
    """Read the corpus, dedup it with the defaults, report wall time and peak RSS of this process."""
    table = pq.read_table(path)
    cfg = DedupConfig()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = dedup_table(table, cfg, table_name="documents")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    peak = after.ru_maxrss / 2**20
    return {
        "docs": table.num_rows, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "docs_per_s": round(table.num_rows / wall), "peak_rss_gib": round(peak, 2),
        "input_table_gib": round(table.nbytes / 2**30, 2),
        "duplicates": result.stats["duplicates"], "candidate_pairs": result.stats["candidate_pairs"],
        "load_average_1m": round(os.getloadavg()[0], 1),
    }  # fmt: skip


def scale(n: int) -> dict:
    """Generate then dedup n documents, each in a child process; returns the dedup figures."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.parquet"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--scale-generate", str(n), str(path)], check=True
        )
        generate_s = time.perf_counter() - start
        out = subprocess.run(
            [sys.executable, __file__, "--scale-child", str(path)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["generate_s"] = round(generate_s, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 documents only")
    parser.add_argument("--curve", action="store_true", help="add the shingle/threshold curve")
    parser.add_argument("--scale", type=int, default=1_000_000, help="documents of the big run")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs; the best counts")
    parser.add_argument("--scale-generate", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--scale-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scale-only", action="store_true", help="only the big run")
    args = parser.parse_args()
    if args.scale_generate:
        scale_generate(int(args.scale_generate[0]), Path(args.scale_generate[1]))
        return
    if args.scale_child:
        print(json.dumps(scale_run(args.scale_child)))
        return
    if args.scale_only:
        print(json.dumps({"scale": scale(args.scale)}, indent=1))
        return
    cfg = DedupConfig()
    bands, rows = mh.lsh_params(cfg.threshold, cfg.num_perm, cfg.min_recall)
    table, plan = corpus(20_000)
    dedup_table(table.slice(0, 500), cfg, table_name="documents")  # warm-up (imports, caches)
    texts = table["body"].to_pylist()
    stage_s, base_s = float("inf"), float("inf")
    for _ in range(args.repeat):  # best of N, alternating: the machine may be shared
        start = time.perf_counter()
        result = dedup_table(table, cfg, table_name="documents")
        stage_s = min(stage_s, time.perf_counter() - start)
        base_s = min(base_s, datasketch_baseline(texts, cfg, bands, rows))
    per_kind = quality(table, plan, result, cfg)
    edits = [k for k in EDITS]
    report = {
        "corpus": {"docs": table.num_rows, "words_per_doc": f"{WORDS - 30}-{WORDS + 30}",
                   "planted_pairs_per_kind": per_kind[edits[0]]["planted_pairs"]},
        "settings": {"threshold": cfg.threshold, "shingle_size": cfg.shingle_size,
                     "num_perm": cfg.num_perm, "bands": bands, "rows": rows,
                     "verify": cfg.verify, "workers": cfg.workers},
        "docs_per_s": round(table.num_rows / stage_s),
        "datasketch_docs_per_s": round(table.num_rows / base_s),
        "speedup_vs_datasketch": round(base_s / stage_s, 1),
        "recall": {k: per_kind[k]["recall"] for k in edits},
        "precision": {k: per_kind[k]["precision"] for k in edits},
        "related_distinct_removed": per_kind["related"]["share_caught"],
        "unplanted_reported": per_kind["unplanted"],
        "per_kind": per_kind,
        "stats": result.stats,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }  # fmt: skip
    if args.curve:
        report["curve"] = curve(table, plan)
    if not args.quick:
        report["scale"] = scale(args.scale)
        report["peak_rss_gib"] = report["scale"]["peak_rss_gib"]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
