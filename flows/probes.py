"""Probes stage: benchmark questions built from the facts that accepted documents reveal."""

from __future__ import annotations

from prefect import flow

from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.probes import build_probes


@flow(name="personafoundry-probes")
def probes_flow(cfg: RunConfig) -> dict:
    """Build direct, negative and temporal probes from the final documents.

    Candidate probes that were dropped are saved with their reasons (`probes/` `dropped`).
    """
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    personas = store.read_latest("personas_dedup", "personas")
    documents = store.read_latest("documents_dedup", "documents")
    if personas is None or documents is None:
        return {"probes": 0}
    plan = store.read_latest("plan")  # which facts a document only implies
    result = build_probes(personas, documents, cfg.documents, rng_seed=cfg.seed, plan=plan)
    parts = {"table": result.table, "dropped": result.dropped}
    store.write_shard("probes", 0, "probes", parts, result.stats)
    return result.stats
