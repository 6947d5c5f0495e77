"""Documents stage: plan fact-revealing documents per persona, then generate in shards."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.conversations import conversation_pairs
from flows.shards import llm_context, run_llm_stage
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.doc_coverage import combine_by_type, combine_coverage, coverage_summary
from personafoundry.doc_plan import plan_documents
from personafoundry.documents import generate_documents
from personafoundry.endpoints import open_endpoints
from personafoundry.summary import coverage_markdown, stage_markdown


@flow(name="personafoundry-documents")
def documents_flow(cfg: RunConfig) -> dict:
    """Plan and write each persona's private documents; save the run's coverage report."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    personas = store.read_latest("personas_dedup", "personas")
    pairs = conversation_pairs(cfg, store, personas)
    plan = plan_documents(personas, cfg.documents, rng_seed=cfg.seed, pairs=pairs).table
    store.write_shard("plan", 0, "plan", {"table": plan}, {"planned": plan.num_rows})
    with open_endpoints(cfg.llm, cfg.embedded) as endpoints:
        out = run_llm_stage(
            "documents", cfg, store, llm_context(cfg, endpoints), plan, "document_id",
            lambda shard, _: lambda llm: generate_documents(
                shard, personas, cfg.documents, llm, rng_seed=cfg.seed
            ),
            cfg.documents,
            extra_parts=lambda result: {"coverage": result.coverage, "by_type": result.by_type},
        )  # fmt: skip
    coverage = combine_coverage(store.read_part("documents", "coverage"))
    by_type = combine_by_type(store.read_part("documents", "by_type"))
    report = coverage_summary(coverage, by_type, personas)
    store.write_shard(
        "coverage", 0, "run", {"table": coverage, "by_type": by_type}, report["facts"]
    )
    store.write_json("coverage.json", report)
    markdown = stage_markdown("documents", out.stats, out.reviews) + coverage_markdown(report)
    create_markdown_artifact(key="documents-summary", markdown=markdown)
    return out.stats
