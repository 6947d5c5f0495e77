"""The duplicate graph: verified candidate pairs, clusters and the member each one keeps.

Nodes 0..k-1 are the new rows of a table, nodes k.. the entries of the dedup index for the
same table (earlier releases). Decisions are recorded in `personafoundry/dedup.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from personafoundry import minhash as mh
from personafoundry.config import DedupConfig
from personafoundry.ids import make_id

PREFILTER_SIGMAS = 4.0  # exact verification skips pairs whose estimate is this far below


@dataclass(frozen=True)
class Sets:
    """Sorted unique shingle hashes of some table rows (flat + offsets), by table row."""

    flat: np.ndarray
    offsets: np.ndarray
    slot: np.ndarray  # table row -> position, -1 when not computed

    def jaccard(self, row_pairs: np.ndarray) -> np.ndarray:
        return mh.exact_jaccard(self.flat, self.offsets, self.slot[row_pairs])


@dataclass(frozen=True)
class Graph:
    """Nodes 0..k-1 are this table's new rows, k.. the index entries of the same table."""

    texts: Callable[[np.ndarray], pa.Array]  # texts of some table rows
    n_rows: int  # rows in the table
    cfg: DedupConfig
    new: np.ndarray  # table row of each new node
    sigs: np.ndarray  # (k, num_perm) signatures of the new nodes
    old: pa.Table
    old_sigs: np.ndarray

    @property
    def k(self) -> int:
        return len(self.new)

    def estimate(self, pairs: np.ndarray) -> np.ndarray:
        """MinHash estimate per node pair (i < j, i always new)."""
        out = np.empty(len(pairs))
        to_old = pairs[:, 1] >= self.k
        out[~to_old] = mh.estimated_jaccard(self.sigs, self.sigs, pairs[~to_old])
        out[to_old] = mh.estimated_jaccard(self.sigs, self.old_sigs, pairs[to_old] - [0, self.k])
        return out

    def shingle_sets(self, nodes: np.ndarray) -> Sets:
        """Recompute the shingle sets of these new nodes' rows, chunk by chunk."""
        rows = self.new[nodes]
        slot = np.full(self.n_rows, -1, np.int64)
        slot[rows] = np.arange(len(rows))
        parts, offs, base = [np.zeros(0, np.uint64)], [np.zeros(1, np.int64)], 0
        for s in range(0, len(rows), self.cfg.chunk_rows):
            texts = self.texts(rows[s : s + self.cfg.chunk_rows])
            flat, offsets = mh.unique_sets(*mh.shingle_hashes(texts, self.cfg.shingle_size))
            parts.append(flat)
            offs.append(offsets[1:] + base)
            base += int(offsets[-1])
        return Sets(np.concatenate(parts), np.concatenate(offs), slot)


def verified_edges(graph: Graph, pairs: np.ndarray) -> tuple[np.ndarray, int]:
    """Candidate pairs whose Jaccard is at or above the threshold, and how many needed sets.

    With `verify="exact"`, a pair whose estimate lies within PREFILTER_SIGMAS standard
    errors of the threshold is decided by the exact Jaccard of its shingle sets; outside
    that band the estimate cannot be wrong in practice (P < 1e-4) and is trusted.
    """
    cfg, t = graph.cfg, graph.cfg.threshold
    sims = graph.estimate(pairs)
    ok = sims >= t
    if cfg.verify == "estimated":
        return pairs[ok], 0
    margin = PREFILTER_SIGMAS * np.sqrt(t * (1 - t) / cfg.num_perm)
    unsure = np.flatnonzero((np.abs(sims - t) < margin) & (pairs[:, 1] < graph.k))
    if len(unsure):
        sets = graph.shingle_sets(np.unique(pairs[unsure]))
        ok[unsure] = sets.jaccard(graph.new[pairs[unsure]]) >= t
    return pairs[ok], len(unsure)


def _first_per_label(labels: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label, first position in `order`) for every label that appears."""
    lab = labels[order]
    first = np.ones(len(lab), bool)
    first[1:] = lab[1:] != lab[:-1]
    return lab[first], order[first]


def cluster_id_for(table_name: str, founder_id: str) -> str:
    return make_id("dup", 0, table_name, founder_id)


def _keepers(
    graph: Graph, labels: np.ndarray, scores: np.ndarray, id_rank: np.ndarray, name: str
) -> tuple[np.ndarray, dict[int, str]]:
    """Kept node per component label (an old kept entry if any, else the best new node),
    and the cluster id of each old keeper (stored, or derived for a singleton)."""
    k = graph.k
    keeper = np.full(len(labels), -1, np.int64)
    lab, node = _first_per_label(labels[:k], np.lexsort((id_rank, -scores, labels[:k])))
    keeper[lab] = node
    touched = np.flatnonzero(np.isin(labels[k:], labels[:k]))  # old entries a new item reached
    if not len(touched):
        return keeper, {}
    picked = graph.old.take(pa.array(touched))
    stored, items = picked["cluster_id"].to_pylist(), picked["item_id"].to_pylist()
    eff = np.array([c or cluster_id_for(name, i) for c, i in zip(stored, items)], dtype=object)
    rank = np.argsort(np.argsort(eff))
    order = np.lexsort((rank, ~picked["is_kept"].to_numpy(), labels[k:][touched]))
    lab, pos = _first_per_label(labels[k:][touched], order)
    keeper[lab] = touched[pos] + k
    return keeper, {int(touched[p]) + k: str(eff[p]) for p in pos}


def _cluster_edges(old: pa.Table, k: int) -> np.ndarray:
    """Chain edges between old entries that already share a cluster id (null = singleton)."""
    col = old["cluster_id"].combine_chunks()
    rows = np.flatnonzero(col.is_valid().to_numpy(zero_copy_only=False))
    codes = pc.dictionary_encode(col.drop_null()).indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    same = np.flatnonzero(codes[order][1:] == codes[order][:-1])
    return np.stack([rows[order[same]], rows[order[same + 1]]], axis=1).astype(np.int64) + k


@dataclass(frozen=True)
class Clusters:
    """Who keeps whom: per new node its kept node (itself if kept) and cluster id."""

    keeper: np.ndarray
    cluster: pa.Array  # string; null for an item alone in its cluster
    node_ids: pa.Array  # item id per node, new then old
    count: int  # clusters that lost at least one member

    @property
    def removed(self) -> np.ndarray:
        return np.flatnonzero(self.keeper != np.arange(len(self.keeper)))


def cluster(
    graph: Graph, edges: np.ndarray, new_ids: pa.Array, scores: np.ndarray, name: str
) -> Clusters:
    """Union-find over verified edges plus the index's existing clusters; pick keepers."""
    k = graph.k
    all_edges = np.concatenate([edges, _cluster_edges(graph.old, k)])
    labels = mh.connected_components(k + graph.old.num_rows, all_edges)
    id_rank = np.argsort(pc.sort_indices(new_ids).to_numpy())
    keeper_of, old_clusters = _keepers(graph, labels, scores, id_rank, name)
    keeper = keeper_of[labels[:k]]
    node_ids = pa.concat_arrays(
        [new_ids.cast(pa.string()), graph.old["item_id"].combine_chunks().cast(pa.string())]
    )
    founders = np.unique(keeper[keeper != np.arange(k)])
    founder_ids = node_ids.take(pa.array(founders)).to_pylist()
    ids = [
        old_clusters[q] if q >= k else cluster_id_for(name, i)
        for q, i in zip(founders.tolist(), founder_ids)
    ]
    member = np.isin(keeper, founders)  # removed items and the keepers that replaced them
    cluster = np.full(k, None, object)
    cluster[member] = np.array(ids + [None], dtype=object)[
        np.searchsorted(founders, keeper[member])
    ]
    return Clusters(keeper, pa.array(cluster, pa.string()), node_ids, len(founders))
