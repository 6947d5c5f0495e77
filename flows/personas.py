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
from personafoundry.unique_names import unique_skeleton_names

SAMPLED = "sampled skeletons (what census sampling produced, before enrichment)"
ACCEPTED = {True: "accepted personas (after enrichment and critics)",
            False: "personas (enrichment off: the sampled skeletons as they are)"}  # fmt: skip


def skeletons(cfg: RunConfig) -> tuple[pa.Table, pa.Table | None, dict]:
    """Census skeletons + completed seed personas, the seed rows skipped (lenient) and counts."""
    census = sample_personas(cfg.personas.census_count, cfg.personas, rng_seed=cfg.seed)
    tables, dropped, stats = [census.table], None, {"census_sampled": census.table.num_rows}
    if cfg.personas.seed_files:
        seeds = load_seed_personas(
            [Path(p) for p in cfg.personas.seed_files], rng_seed=cfg.seed,
            strict=cfg.personas.seed_strict, column_map=cfg.personas.seed_columns,
        )  # fmt: skip
        tables.append(seeds.table)
        dropped, stats = seeds.dropped, {**stats, **seeds.stats}
    table = pa.concat_tables(tables, promote_options="permissive")
    # names unique over census + seed rows before sharding: shards enrich concurrently
    return unique_skeleton_names(table, rng_seed=cfg.seed), dropped, stats


def write_calibration(
    store: RunStore, sampled: pa.Table, accepted: pa.Table | None, cfg: RunConfig
) -> str:
    """Calibration reports saved in the run folder (JSON + MD), whatever enrichment accepted.

    `calibration.*`: the accepted personas (0 rows when none was accepted), the same layout
    as a release's `validation/calibration.*`; `calibration_sampled.*`: the skeletons census
    sampling produced, before enrichment. Returns both as Markdown, accepted first.
    """
    accepted = sampled.slice(0, 0) if accepted is None else accepted
    reports = {
        "calibration": calibration_report(
            accepted, cfg=cfg.personas, subject=ACCEPTED[cfg.personas.enrich]
        ),
        "calibration_sampled": calibration_report(sampled, cfg=cfg.personas, subject=SAMPLED),
    }
    for name, report in reports.items():
        store.write_json(f"{name}.json", report.to_json())
        store.write_text(f"{name}.md", report.to_markdown())
    return "\n".join(report.to_markdown() for report in reports.values())


@flow(name="personafoundry-personas")
def personas_flow(cfg: RunConfig) -> dict:
    """Sample and load persona skeletons, enrich them with the generator-critic loop."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    items, seeds_dropped, seed_stats = skeletons(cfg)
    if seeds_dropped is not None and seeds_dropped.num_rows:  # lenient: skipped, with reasons
        store.write_json("seeds_dropped.json", seeds_dropped.to_pylist())
    if not cfg.personas.enrich:
        store.plan_stage("personas", 1)
        store.write_shard(
            "personas", 0, "no-enrich", {"table": items}, {"accepted": items.num_rows}
        )
        write_calibration(store, items, items, cfg)
        return {"accepted": items.num_rows, **seed_stats}
    with open_endpoints(cfg.llm, cfg.embedded) as endpoints:
        out = run_llm_stage(
            "personas",
            cfg,
            store,
            llm_context(cfg, endpoints),
            items,
            "persona_id",
            lambda shard, _: (
                lambda llm: enrich_personas(shard, cfg.personas, llm, rng_seed=cfg.seed)
            ),
            cfg.personas,
        )
    stats = {**out.stats, **seed_stats}
    markdown = stage_markdown("personas", stats, out.reviews)
    markdown += "\n" + write_calibration(store, items, out.table, cfg)
    create_markdown_artifact(key="personas-summary", markdown=markdown)
    return stats
