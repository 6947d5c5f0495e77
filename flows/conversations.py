"""Conversations stage: pair personas, then the generator-critic loop in shards.

Shards run in generations (`personafoundry.exemplar_pool`): each generation starts from the
best accepted conversations of the earlier ones as few-shot exemplars and, with
`converse.target`, from the number of accepted ones still missing
(`personafoundry.conversation_batches`).
"""

from __future__ import annotations

import pyarrow as pa
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.shards import Generations, llm_context, run_llm_stage
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.conversation_batches import batch_inputs, stage_totals
from personafoundry.conversation_stats import shortfall_markdown
from personafoundry.converse import generate_conversations
from personafoundry.endpoints import open_endpoints
from personafoundry.exemplar_pool import shard_exemplars, shard_generations
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
    """Pair the run's personas and write the accepted conversations: `converse.target` of
    them, or one per pair where possible."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    personas = store.read_latest("personas_dedup", "personas")
    pairs = conversation_pairs(cfg, store, personas)
    batches = Generations(
        plan=shard_generations,
        given=lambda earlier, items: batch_inputs(
            cfg.converse, store.read_part("conversations", "exemplars", shards=earlier),
            store.shard_stats("conversations", shards=earlier), items,
        ),
    )  # fmt: skip
    with open_endpoints(cfg.llm, cfg.embedded) as endpoints:
        out = run_llm_stage(
            "conversations", cfg, store, llm_context(cfg, endpoints), pairs, "conversation_id",
            lambda shard, given: lambda llm: generate_conversations(
                shard, personas, cfg.converse, llm, rng_seed=cfg.seed,
                exemplars=given["exemplars"], target=given["target"],
            ),
            cfg.converse,
            width=cfg.converse.wave_size,  # a shard works one wave of pairs at a time
            extra_parts=lambda result: {"exemplars": shard_exemplars(result)},
            generations=batches,
        )  # fmt: skip
    pairing = store.shard_stats("pairs")[0]
    stats = stage_totals(out.stats, cfg.converse, pairing)
    stats |= pairing_counts(pairing, store.read_part("pairs", "dropped"))
    create_markdown_artifact(
        key="conversations-summary",
        markdown=stage_markdown("conversations", stats, out.reviews)
        + shortfall_markdown(stats, cfg.converse),
    )
    return stats
