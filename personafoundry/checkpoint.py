"""Stage checkpoints under `outputs/runs/<run_id>/`: the unit of resume.

Each shard of a stage is written as one Parquet file per part (`table`, `reviews`,
`dropped`) plus a `shard-NNNN.json` marker written last. Every file goes to a temporary
name and is renamed into place, so a crash leaves either a complete shard or none. The
marker records a fingerprint of the shard's inputs: a shard whose inputs changed is
recomputed instead of being silently reused.

A sharded stage records its shard count in `<stage>/stage.json` (`plan_stage`) before it
runs, and readers take only shards below it: a resumed run with fewer shards than an
earlier attempt (a smaller `census_count`, a larger `shard_size`) must not concatenate the
earlier attempt's higher-numbered shards into its tables. Those files stay on disk
(harmless, and a later attempt with more shards recomputes them by fingerprint). A stage
without `stage.json` (single-shard stages, runs written before it existed) reads every
committed shard.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PARTS = ("table", "reviews", "dropped")
STAGE_FILE = "stage.json"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_table(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


@dataclass(frozen=True)
class RunStore:
    """Reads and writes one run's folder."""

    root: Path

    @classmethod
    def open(cls, output_dir: str | Path, run_id: str) -> RunStore:
        root = Path(output_dir) / "runs" / run_id
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def run_id(self) -> str:
        return self.root.name

    def stage_dir(self, stage: str) -> Path:
        path = self.root / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _marker(self, stage: str, shard: int) -> Path:
        return self.stage_dir(stage) / f"shard-{shard:04d}.json"

    def has_shard(self, stage: str, shard: int, fingerprint: str) -> bool:
        marker = self._marker(stage, shard)
        if not marker.exists():
            return False
        return json.loads(marker.read_text()).get("fingerprint") == fingerprint

    def write_shard(
        self,
        stage: str,
        shard: int,
        fingerprint: str,
        parts: dict[str, pa.Table | None],
        stats: dict[str, Any],
    ) -> None:
        """Write a shard's parts, then its marker (the commit point)."""
        written = []
        for name, table in parts.items():
            if table is None:
                continue
            _atomic_write_table(self.stage_dir(stage) / f"shard-{shard:04d}.{name}.parquet", table)
            written.append(name)
        # `written_by` names the process (a Dask worker, say) that committed the shard.
        marker = {"fingerprint": fingerprint, "parts": written, "stats": stats,
                  "written_by": f"{socket.gethostname()}:{os.getpid()}"}  # fmt: skip
        _atomic_write_bytes(self._marker(stage, shard), json.dumps(marker, indent=1).encode())

    def plan_stage(self, stage: str, shards: int) -> None:
        """Record that `stage` has `shards` shards now: readers ignore any numbered higher."""
        data = json.dumps({"shards": shards}).encode()
        _atomic_write_bytes(self.stage_dir(stage) / STAGE_FILE, data)

    def markers(self, stage: str, shards: Iterable[int] | None = None) -> list[Path]:
        """The stage's committed shard markers in shard order, within its planned count.

        `shards`: only these shard numbers (e.g. the ones before a batch).
        """
        plan = self.stage_dir(stage) / STAGE_FILE
        count = json.loads(plan.read_text())["shards"] if plan.exists() else None
        wanted = None if shards is None else set(shards)
        found = []
        for marker in sorted(self.stage_dir(stage).glob("shard-*.json")):
            number = int(marker.stem.removeprefix("shard-"))
            if (count is None or number < count) and (wanted is None or number in wanted):
                found.append(marker)
        return found

    def shard_stats(self, stage: str, shards: Iterable[int] | None = None) -> list[dict[str, Any]]:
        return [json.loads(m.read_text())["stats"] for m in self.markers(stage, shards)]

    def read_part(
        self, stage: str, part: str = "table", shards: Iterable[int] | None = None
    ) -> pa.Table | None:
        """Concatenate a part over the stage's committed shards, in shard order.

        `shards`: only these shard numbers (default: every shard of the current plan).
        """
        tables = []
        for marker in self.markers(stage, shards):
            if part not in json.loads(marker.read_text())["parts"]:
                continue
            tables.append(pq.read_table(marker.with_suffix(f".{part}.parquet")))
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="permissive")

    def read_latest(self, *stages: str, part: str = "table") -> pa.Table | None:
        """The part of the first stage in `stages` that has one (e.g. deduped, then raw)."""
        for stage in stages:
            table = self.read_part(stage, part)
            if table is not None:
                return table
        return None

    def write_json(self, name: str, value: Any) -> Path:
        path = self.root / name
        _atomic_write_bytes(path, json.dumps(value, indent=2, sort_keys=True, default=str).encode())
        return path

    def write_text(self, name: str, text: str) -> Path:
        path = self.root / name
        _atomic_write_bytes(path, text.encode())
        return path

    def read_json(self, name: str) -> Any:
        path = self.root / name
        return json.loads(path.read_text()) if path.exists() else None
