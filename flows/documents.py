"""Documents stage: plan fact-revealing documents per persona, then generate in shards."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.conversations import conversation_pairs
from flows.shards import llm_context, run_llm_stage
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.doc_plan import plan_documents
from personafoundry.documents import generate_documents
from personafoundry.endpoints import open_endpoints
from personafoundry.summary import stage_markdown


@flow(name="personafoundry-documents")
def documents_flow(cfg: RunConfig) -> dict:
    """Plan and write each persona's private documents."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    personas = store.read_latest("personas_dedup", "personas")
    pairs = conversation_pairs(cfg, store, personas)
    plan = plan_documents(personas, cfg.documents, rng_seed=cfg.seed, pairs=pairs).table
    store.write_shard("plan", 0, "plan", {"table": plan}, {"planned": plan.num_rows})
    with open_endpoints(cfg.llm, cfg.embedded) as endpoints:
        out = run_llm_stage(
            "documents",
            cfg,
            store,
            llm_context(cfg, endpoints),
            plan,
            "document_id",
            lambda shard: (
                lambda llm: generate_documents(
                    shard, personas, cfg.documents, llm, rng_seed=cfg.seed
                )
            ),
            cfg.documents,
        )
    create_markdown_artifact(
        key="documents-summary", markdown=stage_markdown("documents", out.stats, out.reviews)
    )
    return out.stats
