"""Near-duplicate removal over stage tables, within a run and against earlier releases.

Decisions:
- Text per table comes from `DedupConfig.text_fields` (personas: narrative + fact
  statements; conversations: every turn; documents: title + body), joined by newlines.
- Candidates from LSH (`minhash.py`) are verified. `verify="exact"`: a pair whose MinHash
  estimate lies within PREFILTER_SIGMAS (4) standard errors of the threshold is decided by
  the exact Jaccard of its shingle sets, recomputed for those rows only; outside that band
  the estimate is trusted (wrong with P < 1e-4). Pairs with an item of an earlier release
  always use the estimate (the index keeps signatures, not texts). `verify="estimated"`
  trusts the estimate everywhere. The `similarity` column is always the MinHash estimate
  of the removed item against its keeper, as `schemas/duplicates.py` says.
- Union-find clusters; the kept member is the best mean critic score, ties broken by the
  smallest item id, so the choice never depends on row order. A cluster that reaches an
  item of an earlier release keeps that item (published rows are immutable): every new
  member is removed with `kept_id` naming the old item, under the old cluster id.
- Cluster ids are `make_id("dup", 0, table, founding kept id)`: derived from content, not
  from the run seed, so they are stable across runs and releases. Where one new item
  bridges two old clusters, it joins the one with the smallest cluster id.
- Items whose id is kept in the index (a rerun, a later version re-including them) are
  carried over: kept, not compared again. An item the index records as removed is compared
  again (and removed again) but indexed once. Empty texts are kept and never indexed.
- `rng_seed` is accepted for the stage-signature convention but unused: dedup is a
  function of the content and `cfg.seed`, never of the run seed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from personafoundry import minhash as mh
from personafoundry.config import DedupConfig
from personafoundry.dedup_graph import Clusters, Graph, cluster, verified_edges
from personafoundry.dedup_index import (
    DedupIndex,
    compatible_index,
    fixed_list,
    load_index,
    matrix,
    save_index,
)
from personafoundry.errors import ConfigError
from schemas.duplicates import SCHEMA as DUPLICATES_SCHEMA

__all__ = ["DedupIndex", "DedupResult", "dedup_table", "load_index", "save_index", "table_text"]

log = logging.getLogger(__name__)

REASON = "near_duplicate"
_NEWLINE = pa.scalar("\n", pa.large_string())


@dataclass(frozen=True)
class DedupResult:
    """Kept rows, the `duplicates` table, removed rows with their reason, stats, new index."""

    table: pa.Table
    duplicates: pa.Table
    dropped: pa.Table
    stats: dict[str, int]
    index: DedupIndex


def table_text(table: pa.Table, fields: Sequence[str]) -> pa.Array:
    """One text per row: the named fields joined by newlines (nulls read as empty)."""
    parts = [_field_text(table, f) for f in fields]
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _NEWLINE)


def _field_text(table: pa.Table, path: str) -> pa.Array:
    name, _, sub = path.partition(".")
    if name not in table.column_names:
        raise ConfigError(f"dedup.text_fields: column {name!r} is not in {table.column_names}.")
    col = table.column(name).combine_chunks()
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        values = pc.struct_field(col.values, sub) if sub else col.values
        values = pc.fill_null(values.cast(pa.large_string()), "")
        lists = pa.LargeListArray.from_arrays(col.offsets.cast(pa.int64()), values)
        text = pc.binary_join(lists, _NEWLINE)
    else:
        text = pc.struct_field(col, sub) if sub else col
    return pc.fill_null(text.cast(pa.large_string()), "")


def row_scores(table: pa.Table, column: str | None) -> np.ndarray:
    """Score per row, higher is better: the mean of a list of `{score}` or a numeric column.

    Rows without a score get -inf, so any scored copy is preferred to them.
    """
    n = table.num_rows
    if column is None:
        return np.zeros(n)
    col = table.column(column).combine_chunks()
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        values = col.flatten()
        values = pc.struct_field(values, "score") if pa.types.is_struct(values.type) else values
        v = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        parent = pc.list_parent_indices(col).to_numpy()
        ok = ~np.isnan(v)
        total = np.bincount(parent[ok], v[ok], minlength=n)
        count = np.bincount(parent[ok], minlength=n)
        return np.where(count > 0, total / np.maximum(count, 1), -np.inf)
    v = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return np.where(np.isnan(v), -np.inf, v)


def _signatures(
    table: pa.Table, fields: Sequence[str], cfg: DedupConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(n, num_perm) uint32 signatures and a has-shingles mask, `chunk_rows` at a time."""
    n = table.num_rows
    sigs = np.empty((n, cfg.num_perm), np.uint32)
    valid = np.empty(n, bool)

    def one(start: int) -> None:
        texts = table_text(table.slice(start, cfg.chunk_rows), fields)
        hashes, offsets = mh.shingle_hashes(texts, cfg.shingle_size)
        stop = start + len(texts)
        sigs[start:stop] = mh.signatures(hashes, offsets, cfg.num_perm, cfg.seed)
        valid[start:stop] = np.diff(offsets) > 0

    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:  # Arrow and numpy drop the GIL
        list(pool.map(one, range(0, n, cfg.chunk_rows)))
    return sigs, valid


def _updated_index(
    index: DedupIndex, graph: Graph, keys: np.ndarray, new_ids: pa.Array,
    clusters: Clusters, name: str,
) -> DedupIndex:  # fmt: skip
    """The index plus this table's new items (an item indexed before is not added twice)."""
    entries = pa.table(
        [
            pa.array([name] * graph.k, pa.string()), new_ids.cast(pa.string()),
            clusters.cluster,
            pa.array(clusters.keeper == np.arange(graph.k)), fixed_list(graph.sigs),
            fixed_list(keys),
        ],
        schema=index.entries.schema,
    )  # fmt: skip
    known = graph.old["item_id"].combine_chunks()
    fresh = pc.invert(pc.is_in(new_ids, value_set=known))
    return DedupIndex(index.params, pa.concat_tables([index.entries, entries.filter(fresh)]))


def _id_column(table: pa.Table, table_name: str) -> str:
    name = f"{table_name.removesuffix('s')}_id"
    if name not in table.column_names:
        raise ConfigError(f"dedup of table {table_name!r}: no id column {name!r}.")
    return name


def dedup_table(
    table: pa.Table,
    cfg: DedupConfig,
    *,
    table_name: str,
    text_fields: Sequence[str] | None = None,
    score_column: str | None = "critic_scores",
    index: DedupIndex | None = None,
    rng_seed: int = 0,
) -> DedupResult:
    """Drop near-duplicate rows, keeping the best-scored member of each cluster.

    Jaccard over word n-gram shingles (`cfg.shingle_size`), LSH bands from `cfg.threshold`,
    candidates verified (`cfg.verify`), union-find clusters; checked against `index`
    (earlier releases) too. `rng_seed` is unused on purpose (see the module docstring).

    Input columns: `schemas/<table_name>.py`; the id column is `<singular>_id`.
    Output columns: `table` as the input; `duplicates` as `schemas/duplicates.py`;
    `dropped` the removed rows plus `reason`, `kept_id`, `cluster_id`.
    """
    del rng_seed
    fields = list(text_fields or cfg.text_fields.get(table_name, []))
    if not fields:
        raise ConfigError(f"dedup.text_fields has no entry for table {table_name!r}; add one.")
    ids = table.column(_id_column(table, table_name)).combine_chunks().cast(pa.string())
    index = compatible_index(DedupIndex.empty(cfg) if index is None else index, cfg)
    bands, rows = int(index.params["bands"]), int(index.params["rows"])
    old = index.of_table(table_name)
    kept_before = old.filter(old["is_kept"])["item_id"].combine_chunks()
    carried = pc.is_in(ids, value_set=kept_before).to_numpy(zero_copy_only=False)
    sigs, valid = _signatures(table, fields, cfg)
    new = np.flatnonzero(valid & ~carried)
    for start in range(0, len(new), cfg.chunk_rows):  # compact in place (new[i] >= i): no copy
        picked = new[start : start + cfg.chunk_rows]
        sigs[start : start + len(picked)] = sigs[picked]

    def texts(rows: np.ndarray) -> pa.Array:
        return table_text(table.take(pa.array(rows)), fields)

    old_sigs = matrix(old["signature"], cfg.num_perm)
    graph = Graph(texts, table.num_rows, cfg, new, sigs[: len(new)], old, old_sigs)
    keys = mh.band_keys(graph.sigs, bands, rows)
    all_keys = np.concatenate([keys, matrix(old["band_keys"], bands)]) if old.num_rows else keys
    pairs = mh.candidate_pairs(all_keys)
    pairs = pairs[pairs[:, 0] < graph.k]  # old-old pairs were settled when they were released
    edges, exact_checks = verified_edges(graph, pairs)
    new_ids = ids.take(pa.array(new))
    scores = row_scores(table, score_column)[new]
    clusters = cluster(graph, edges, new_ids, scores, table_name)
    removed = clusters.removed
    link = np.stack([removed, clusters.keeper[removed]], axis=1)
    duplicates = pa.table(
        {
            "table": pa.array([table_name] * len(removed), pa.string()),
            "item_id": clusters.node_ids.take(pa.array(removed)),
            "kept_id": clusters.node_ids.take(pa.array(link[:, 1])),
            "cluster_id": clusters.cluster.take(pa.array(removed)),
            "similarity": graph.estimate(np.sort(link, axis=1)),
            "reason": [REASON] * len(removed),
        },
        schema=DUPLICATES_SCHEMA.arrow_schema(),
    )  # fmt: skip
    keep = np.ones(table.num_rows, bool)
    keep[new[removed]] = False
    new_index = _updated_index(index, graph, keys, new_ids, clusters, table_name)
    dropped = table.filter(pa.array(~keep))
    for name in ("reason", "kept_id", "cluster_id"):
        dropped = dropped.append_column(name, duplicates[name])
    stats = {
        "rows_in": table.num_rows, "rows_kept": int(keep.sum()), "duplicates": len(removed),
        "duplicates_of_earlier_releases": int((link[:, 1] >= graph.k).sum()),
        "clusters": clusters.count, "candidate_pairs": len(pairs),
        "verified_pairs": len(edges),
        "exact_checks": exact_checks, "empty_texts": int((~valid).sum()),
        "carried_over": int(carried.sum()), "bands": bands, "rows_per_band": rows,
        "index_entries": len(new_index),
    }  # fmt: skip
    log.info("dedup %s: %s", table_name, stats)
    return DedupResult(table.filter(pa.array(keep)), duplicates, dropped, stats, new_index)
