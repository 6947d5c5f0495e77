"""Conversations stage: pair personas, then the generator-critic loop in shards.

Shards run in generations (`personafoundry.exemplar_pool`): each generation starts from the
best accepted conversations of the earlier ones as few-shot exemplars.
"""

from __future__ import annotations

import pyarrow as pa
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.shards import Generations, llm_context, run_llm_stage
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.converse import generate_conversations
from personafoundry.endpoints import open_endpoints
from personafoundry.exemplar_pool import generation_pool, shard_exemplars, shard_generations
from personafoundry.ids import stable_hash
from personafoundry.pairing import pair_personas
from personafoundry.summary import pairing_counts, stage_markdown


def conversation_pairs(cfg: RunConfig, store: RunStore, personas: pa.Table) -> pa.Table:
    """The run's persona pairs, planned once and checkpointed with the personas left short
    of partners (`dropped`): the conversations are written for the pairs and the documents
    take their counterparts from them, so the two stages can run at the same time."""
    fingerprint = stable_hash(
        [cfg.seed, cfg.converse.model_dump(mode="json"), personas.column("persona_id").to_pylist()]
    )
    if not store.has_shard("pairs", 0, fingerprint):
        result = pair_personas(personas, cfg.converse, rng_seed=cfg.seed)
        parts = {"table": result.table, "dropped": result.dropped}
        store.write_shard("pairs", 0, fingerprint, parts, result.stats)
    return store.read_part("pairs")


@flow(name="personafoundry-conversations")
def conversations_flow(cfg: RunConfig) -> dict:
    """Pair the run's personas and write one accepted conversation per pair where possible."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    personas = store.read_latest("personas_dedup", "personas")
    pairs = conversation_pairs(cfg, store, personas)
    exemplars = Generations(
        plan=shard_generations,
        given=lambda earlier: generation_pool(
            store.read_part("conversations", "exemplars", shards=earlier), cfg.converse
        ),
    )
    with open_endpoints(cfg.llm, cfg.embedded) as endpoints:
        out = run_llm_stage(
            "conversations", cfg, store, llm_context(cfg, endpoints), pairs, "conversation_id",
            lambda shard, pool: lambda llm: generate_conversations(
                shard, personas, cfg.converse, llm, rng_seed=cfg.seed, exemplars=pool
            ),
            cfg.converse,
            width=cfg.converse.wave_size,  # a shard works one wave of pairs at a time
            extra_parts=lambda result: {"exemplars": shard_exemplars(result)},
            generations=exemplars,
        )  # fmt: skip
    pairing = pairing_counts(store.shard_stats("pairs")[0], store.read_part("pairs", "dropped"))
    stats = {**out.stats, **pairing}
    create_markdown_artifact(
        key="conversations-summary",
        markdown=stage_markdown("conversations", stats, out.reviews),
    )
    return stats
