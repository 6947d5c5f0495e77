"""`personafoundry run --estimate`: price a run from a small preview before paying for it.

The preview enriches two personas, writes one conversation and one document with the
configured endpoints, measures tokens per accepted-or-not item (paid and cached tokens
alike, so a repeated estimate gives the same figure), and scales by the planned counts.
Preview calls go through the shared response cache under the run id `<run>-estimate`,
so the real run gets them for free. It is an estimate: acceptance rates and reply
lengths of two items vary, which the output says.
"""

from __future__ import annotations

from typing import Any

from personafoundry.census import sample_personas
from personafoundry.config import Budget, RunConfig
from personafoundry.converse import generate_conversations
from personafoundry.doc_plan import plan_documents
from personafoundry.documents import generate_documents
from personafoundry.endpoints import open_endpoints
from personafoundry.enrich import enrich_personas
from personafoundry.pairing import pair_personas
from personafoundry.runner import LlmContext, run_llm
from personafoundry.usage import merge_usage, price_of

PREVIEW_PERSONAS = 2


def planned_items(cfg: RunConfig) -> dict[str, int]:
    """How many items of each kind the run will attempt (seed files counted by lines)."""
    from pathlib import Path

    from personafoundry.seeds import load_seed_personas

    seeds = 0
    if cfg.personas.seed_files:
        paths = [Path(p) for p in cfg.personas.seed_files]
        seeds = load_seed_personas(
            paths,
            rng_seed=cfg.seed,
            strict=False,
            column_map=cfg.personas.seed_columns,
            complete=False,
        ).table.num_rows
    personas = cfg.personas.census_count + seeds
    return {
        "personas": personas,
        # a target asks for exactly that many accepted ones; else one per planned pair
        "conversations": (
            cfg.converse.target
            if cfg.converse.target is not None
            else personas * cfg.converse.per_persona // 2
        ),
        "documents": personas * cfg.documents.per_persona,
    }


def _tokens(usage: dict[str, dict[str, float]]) -> int:
    return int(sum(u["prompt_tokens"] + u["completion_tokens"] + u["cached_tokens"]
                   for u in usage.values()))  # fmt: skip


def preview(cfg: RunConfig, ctx: LlmContext) -> dict[str, tuple[int, dict]]:
    """Run one tiny batch per LLM stage; returns items attempted and usage per stage."""
    seed = cfg.seed
    skel = sample_personas(PREVIEW_PERSONAS, cfg.personas, rng_seed=seed).table
    enriched, u_personas = run_llm(
        ctx, lambda llm: enrich_personas(skel, cfg.personas, llm, rng_seed=seed)
    )
    out = {"personas": (skel.num_rows, u_personas)}
    personas = enriched.table if enriched.table.num_rows else skel
    pairs = pair_personas(personas, cfg.converse, rng_seed=seed).table.slice(0, 1)
    if pairs.num_rows:
        _, usage = run_llm(ctx, lambda llm: generate_conversations(
            pairs, personas, cfg.converse, llm, rng_seed=seed))  # fmt: skip
        out["conversations"] = (pairs.num_rows, usage)
    plan = plan_documents(personas, cfg.documents, rng_seed=seed).table.slice(0, 1)
    if plan.num_rows:
        _, usage = run_llm(ctx, lambda llm: generate_documents(
            plan, personas, cfg.documents, llm, rng_seed=seed))  # fmt: skip
        out["documents"] = (plan.num_rows, usage)
    return out


def estimate_run(cfg: RunConfig) -> dict[str, Any]:
    """Tokens and USD the configured run is expected to cost, against its budget."""
    cache = cfg.llm.cache_path or f"{cfg.output_dir}/cache/responses.sqlite"
    with open_endpoints(cfg.llm, cfg.embedded) as endpoints:
        ctx = LlmContext(endpoints, cache, f"{cfg.resolved_run_id()}-estimate",
                         dict(cfg.llm.prices), Budget())  # fmt: skip
        measured = preview(cfg, ctx)
    planned = planned_items(cfg)
    stages, total_tokens, total_usd = {}, 0, 0.0
    for stage, (items, usage) in measured.items():
        per_item = _tokens(usage) / max(items, 1)
        usd_per_item = sum(
            price_of(
                cfg.llm.prices,
                key.split("/", 1)[1],
                u["prompt_tokens"] + u["cached_tokens"],
                u["completion_tokens"],
            )
            for key, u in usage.items()
        ) / max(items, 1)
        tokens = round(per_item * planned[stage])
        stages[stage] = {"planned_items": planned[stage], "preview_items": items,
                         "tokens_per_item": round(per_item), "tokens": tokens,
                         "usd": round(usd_per_item * planned[stage], 4)}  # fmt: skip
        total_tokens += tokens
        total_usd += usd_per_item * planned[stage]
    budget = cfg.llm.budget.model_dump()
    return {
        "run_id": cfg.resolved_run_id(),
        "stages": stages,
        "total_tokens": total_tokens,
        "total_usd": round(total_usd, 4),
        "budget": budget,
        "within_budget": _within(budget, total_tokens, total_usd),
        "preview_usage": merge_usage([u for _, u in measured.values()]),
        "note": f"scaled from {PREVIEW_PERSONAS} preview personas; acceptance and reply "
        "lengths vary, so treat it as +-50%",
    }


def _within(budget: dict[str, Any], tokens: int, usd: float) -> bool:
    if budget.get("max_tokens") is not None and tokens > budget["max_tokens"]:
        return False
    return not (budget.get("max_cost_usd") is not None and usd > budget["max_cost_usd"])
