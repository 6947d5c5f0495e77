"""The persistent dedup index: what a release stores so the next one dedups against it.

Decisions:
- One Parquet file, `dedup_index.parquet`, with one row per item ever indexed: table,
  item_id, cluster_id (null for an item alone in its cluster; its id is derived from the
  item id when a later item joins it), is_kept, the MinHash signature
  (fixed_size_list<uint32>) and the LSH band keys (fixed_size_list<uint64>).
- Parameters that signatures depend on (scheme, num_perm, seed, shingle size) live in the
  file's schema metadata; a config that disagrees is refused. Band keys depend on the
  threshold too, but are cheap to recompute from the signatures, so a new threshold only
  re-bands the index.
- The index is cumulative (each release stores old + new entries), so the latest release's
  index covers every earlier version of that release name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from personafoundry import minhash as mh
from personafoundry.config import DedupConfig
from personafoundry.errors import ConfigError, PersonaFoundryError

INDEX_FILE = "dedup_index.parquet"
INDEX_FORMAT = 1
_META_KEY = b"personafoundry.dedup"
_SIGNATURE_PARAMS = ("format", "scheme", "num_perm", "seed", "shingle_size")


@dataclass(frozen=True)
class DedupIndex:
    """Signatures, band keys and cluster ids of every item deduplicated so far.

    `params` pins what signatures depend on plus the LSH (bands, rows) of `band_keys`.
    """

    params: dict[str, int | str]
    entries: pa.Table

    @classmethod
    def empty(cls, cfg: DedupConfig) -> DedupIndex:
        params = index_params(cfg)
        return cls(
            params, index_schema(int(params["num_perm"]), int(params["bands"])).empty_table()
        )

    def __len__(self) -> int:
        return self.entries.num_rows

    def of_table(self, table_name: str) -> pa.Table:
        """The entries of one table (items of different tables are never compared)."""
        return self.entries.filter(pc.equal(self.entries["table"], table_name))


def index_params(cfg: DedupConfig) -> dict[str, int | str]:
    """What an index built with `cfg` records about itself."""
    bands, rows = mh.lsh_params(cfg.threshold, cfg.num_perm, cfg.min_recall)
    return {
        "format": INDEX_FORMAT, "scheme": "affine32", "num_perm": cfg.num_perm,
        "seed": cfg.seed, "shingle_size": cfg.shingle_size, "bands": bands, "rows": rows,
    }  # fmt: skip


def index_schema(num_perm: int, bands: int) -> pa.Schema:
    return pa.schema([
        ("table", pa.string()), ("item_id", pa.string()), ("cluster_id", pa.string()),
        ("is_kept", pa.bool_()), ("signature", pa.list_(pa.uint32(), num_perm)),
        ("band_keys", pa.list_(pa.uint64(), bands)),
    ])  # fmt: skip


def matrix(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed_size_list column as an (n, width) numpy array."""
    values = column.combine_chunks().flatten()
    return values.to_numpy(zero_copy_only=False).reshape(-1, width)


def fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    """An (n, width) numpy array as a fixed_size_list array."""
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])


def save_index(index: DedupIndex, directory: Path) -> Path:
    """Write `directory/dedup_index.parquet` (temp file + rename); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / INDEX_FILE
    meta = {_META_KEY: json.dumps(index.params, sort_keys=True).encode()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(index.entries.replace_schema_metadata(meta), tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def load_index(directory: Path) -> DedupIndex:
    """Read the index `save_index` wrote into `directory`."""
    path = directory / INDEX_FILE
    if not path.exists():
        raise PersonaFoundryError(
            f"{path} does not exist; pass the folder of a release cut with a dedup index."
        )
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise PersonaFoundryError(
            f"{path} has no dedup parameters; it was not written by save_index."
        )
    return DedupIndex(json.loads(raw), table.replace_schema_metadata(None))


def compatible_index(index: DedupIndex, cfg: DedupConfig) -> DedupIndex:
    """`index` with band keys for `cfg`; its signatures must have been made the same way."""
    want = index_params(cfg)
    if any(index.params.get(k) != want[k] for k in _SIGNATURE_PARAMS):
        got = {k: index.params.get(k) for k in _SIGNATURE_PARAMS}
        asked = {k: want[k] for k in _SIGNATURE_PARAMS}
        raise ConfigError(
            f"dedup index was built with {got}, the config asks for {asked}; set dedup.* to "
            "the index's values or start a new index."
        )
    if (index.params["bands"], index.params["rows"]) == (want["bands"], want["rows"]):
        return index
    sigs = matrix(index.entries["signature"], int(want["num_perm"]))
    keys = mh.band_keys(sigs, int(want["bands"]), int(want["rows"]))
    entries = index.entries.set_column(
        5, pa.field("band_keys", pa.list_(pa.uint64(), int(want["bands"]))), fixed_list(keys)
    )
    return DedupIndex(want, entries)


def prior_index(
    run_dir: Path, releases_root: Path, name: str, cfg: DedupConfig
) -> DedupIndex | None:
    """The index a run's next dedup call starts from, or None for a first release.

    The run's own index (written by an earlier dedup call of this run) wins; otherwise the
    index of the newest published version of release `name`, which is cumulative over all
    earlier versions, so cross-release dedup never recomputes old signatures.
    """
    from personafoundry.catalog import existing_versions

    if (run_dir / INDEX_FILE).exists():
        return compatible_index(load_index(run_dir), cfg)
    for version in reversed(existing_versions(releases_root, name)):
        folder = releases_root / name / version
        if (folder / INDEX_FILE).exists():
            return compatible_index(load_index(folder), cfg)
    return None
