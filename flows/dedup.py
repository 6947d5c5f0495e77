"""Dedup stage: MinHash + LSH near-duplicate removal per table, against earlier releases."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.dedup import dedup_table
from personafoundry.dedup_index import prior_index, save_index
from personafoundry.ids import stable_hash
from personafoundry.minhash import permutations


def prewarm_dedup(cfg: RunConfig) -> None:
    """Load datasketch and its permutations (about 0.5 s) before the first dedup needs them.

    The pipeline calls this in a background thread while the personas stage waits on the
    network, so the dedup between the personas and the next stages does not pay for it.
    """
    permutations(cfg.dedup.num_perm, cfg.dedup.seed)


@flow(name="personafoundry-dedup")
def dedup_flow(cfg: RunConfig, tables: list[str]) -> dict:
    """Deduplicate each named stage table; removed rows go to its `dropped` part."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    stats: dict[str, dict] = {}
    releases = Path(cfg.output_dir) / "releases"
    index = prior_index(store.root, releases, cfg.release.name, cfg.dedup)
    for name in tables:
        table = store.read_part(name)
        if table is None or table.num_rows == 0:
            continue
        fingerprint = stable_hash([cfg.dedup.model_dump(mode="json"), table.num_rows, name])
        result = dedup_table(table, cfg.dedup, table_name=name, index=index, rng_seed=cfg.seed)
        index = result.index
        store.write_shard(
            f"{name}_dedup",
            0,
            fingerprint,
            {"table": result.table, "dropped": result.duplicates},
            result.stats,
        )
        stats[name] = result.stats
    if index is not None:
        save_index(index, store.root)  # the next dedup call and the release start from it
    lines = ["# dedup", "", "| table | stats |", "|---|---|"]
    lines += [f"| {name} | {s} |" for name, s in stats.items()]
    create_markdown_artifact(key="dedup-summary", markdown="\n".join(lines))
    return stats
