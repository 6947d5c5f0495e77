"""Personas stage: census skeletons + seed personas, then LLM enrichment in shards."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.shards import llm_context, run_llm_stage
from personafoundry.calibration import calibration_report
from personafoundry.census import sample_personas
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.endpoints import open_endpoints
from personafoundry.enrich import enrich_personas
from personafoundry.seeds import load_seed_personas
from personafoundry.summary import stage_markdown


def skeletons(cfg: RunConfig) -> pa.Table:
    tables = [sample_personas(cfg.personas.census_count, cfg.personas, rng_seed=cfg.seed).table]
    if cfg.personas.seed_files:
        paths = [Path(p) for p in cfg.personas.seed_files]
        tables.append(load_seed_personas(paths, rng_seed=cfg.seed).table)
    return pa.concat_tables(tables, promote_options="permissive")


@flow(name="personafoundry-personas")
def personas_flow(cfg: RunConfig) -> dict:
    """Sample and load persona skeletons, enrich them with the generator-critic loop."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    items = skeletons(cfg)
    if not cfg.personas.enrich:
        store.write_shard(
            "personas", 0, "no-enrich", {"table": items}, {"accepted": items.num_rows}
        )
        return {"accepted": items.num_rows}
    with open_endpoints(cfg.llm, cfg.embedded) as endpoints:
        out = run_llm_stage(
            "personas",
            cfg,
            store,
            llm_context(cfg, endpoints),
            items,
            "persona_id",
            lambda shard: lambda llm: enrich_personas(shard, cfg.personas, llm, rng_seed=cfg.seed),
            cfg.personas,
        )
    markdown = stage_markdown("personas", out.stats, out.reviews)
    if out.table is not None and out.table.num_rows:  # census TVDs of what was accepted
        markdown += "\n" + calibration_report(out.table, cfg=cfg.personas).to_markdown()
    create_markdown_artifact(key="personas-summary", markdown=markdown)
    return out.stats
