"""The end-to-end pipeline: every stage flow in order, one embedded server and cluster for all."""

from __future__ import annotations

import threading

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.conversations import conversation_pairs, conversations_flow
from flows.dedup import dedup_flow, prewarm_dedup
from flows.documents import documents_flow
from flows.personas import personas_flow
from flows.probes import probes_flow
from flows.release import prewarm_release_imports, release_flow
from flows.scale import open_cluster
from flows.shards import llm_context
from flows.validate import validate_flow
from personafoundry import settings
from personafoundry.cache import ResponseCache
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.endpoints import open_endpoints
from personafoundry.plot_helper import open_plot_helper

DEMO_QUERY = (
    "SELECT p.name, p.age, p.state, p.occupation, count(DISTINCT d.document_id) AS documents, "
    "count(DISTINCT c.conversation_id) AS conversations FROM personas p "
    "LEFT JOIN documents d ON d.persona_id = p.persona_id "
    "LEFT JOIN conversations c ON list_contains(c.persona_ids, p.persona_id) "
    "GROUP BY ALL ORDER BY p.name"
)


@task(cache_policy=NONE, task_run_name="documents")
def documents_alongside(cfg: RunConfig) -> dict:
    """The documents stage, in the pipeline's thread pool next to the conversations.

    Submitted before the conversations start, so the documents (about three times the
    calls) are first to fill the endpoint slots; the conversations, whose first shard
    generation is a single shard, use the slots the documents leave free.
    """
    return documents_flow(cfg)


@flow(name="personafoundry-pipeline")
def pipeline_flow(cfg: RunConfig) -> dict:
    """Personas -> dedup -> (conversations | documents) -> dedup -> probes -> validate -> release."""
    settings.configure()
    # Stage subflows send no heartbeats of their own: this flow's heartbeat already shows the
    # process is alive, and a subflow's heartbeat thread holds its end for up to 1 s.
    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        open_plot_helper(),  # draws half the release's report plots, in its own process
    ):
        return _run_stages(cfg)


def _run_stages(cfg: RunConfig) -> dict:
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    store.write_json(
        "config.json",
        {"sha256": cfg.config_hash(), "config": cfg.model_dump(mode="json", by_alias=True)},
    )
    # One Dask cluster (when configured) and one embedded server for all stages.
    with open_cluster(cfg), open_endpoints(cfg.llm, cfg.embedded) as endpoints:
        ctx = llm_context(cfg, endpoints)
        threading.Thread(target=prewarm_dedup, args=(cfg,), name="prewarm", daemon=True).start()
        stats = {"personas": personas_flow(cfg)}
        stats["dedup_personas"] = dedup_flow(cfg, ["personas"])
        # Documents need the pairs, not the conversations: both stages run at once and share
        # each endpoint's max_concurrency, so one stage's tail is filled by the other's work.
        conversation_pairs(cfg, store, store.read_latest("personas_dedup", "personas"))
        documents = documents_alongside.submit(cfg)
        try:
            stats["conversations"] = conversations_flow(cfg)
            # deduped while the documents run (the index passes on to the documents' dedup)
            stats["dedup"] = dedup_flow(cfg, ["conversations"])
            # the release's imports load while the documents mostly wait on the network
            threading.Thread(target=prewarm_release_imports, name="prewarm", daemon=True).start()
        except BaseException as err:
            # a stop (budget, endpoint down) raises after the documents' shards commit too,
            # so a resume redoes as little as possible; their own failure is told with it
            documents.wait()
            if documents.state.is_failed():
                err.add_note(f"The documents stage failed too: {documents.state.message}")
            raise
        stats["documents"] = documents.result()
    stats["dedup"] |= dedup_flow(cfg, ["documents"])
    stats["probes"] = probes_flow(cfg)
    cache = ResponseCache(ctx.cache_path)
    ledger = cache.ledger(ctx.run_id)
    cache.close()
    store.write_json("stats.json", stats)
    stage_usage = {
        k: v["usage"] for k, v in stats.items() if isinstance(v, dict) and v.get("usage")
    }
    run_info = {"models": ctx.models(), "tokens": ledger, "stage_usage": stage_usage}
    store.write_json("run_info.json", run_info)  # `release cut --from RUN` merges it
    stats["validate"] = validate_flow(cfg)  # a failure stops here, with its artifact
    # the release reuses that report (validation.json) if the tables are still the same
    release_path = release_flow(cfg, run_info, reuse_validation=True)
    usage = {f"{row['role']}/{row['model']}": row for row in ledger}  # paid, over all resumes
    return {
        "run_id": store.run_id,
        "release_path": release_path,
        "usage": usage,
        "stats": stats,
        "demo_query": DEMO_QUERY,
    }
