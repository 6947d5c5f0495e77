"""Shared wiring for stage flows: sharding, checkpoints, the LLM shard task, progress.

A shard is one Prefect task whose LLM calls run concurrently inside it. The missing shards
of a stage are submitted together to the task runner of `orchestration.task_runner`
(`flows/scale.py`), which keeps `parallel_shards` of them in flight; their calls share
each endpoint's `max_concurrency`, so the limit holds for the stage, not per shard.
Results are gathered in shard order, and a stage's tables are read back from the
checkpoints in shard order, so they are the same whatever runner and timing. A shard
whose checkpoint exists (same input fingerprint) is skipped, so a rerun or `--resume`
only does what is missing; within a shard, the response cache makes re-done calls free.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NONE

from flows.scale import shard_runner
from personafoundry.cache import ResponseCache
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.errors import BudgetExceeded, EndpointError
from personafoundry.ids import stable_hash
from personafoundry.llm import LlmClient
from personafoundry.runner import LlmContext, run_llm
from personafoundry.usage import merge_usage

log = logging.getLogger("personafoundry.flows")
RUN_STOPPERS = (BudgetExceeded, EndpointError)


@dataclass(frozen=True)
class StageOutput:
    table: pa.Table | None
    reviews: pa.Table | None
    dropped: pa.Table | None
    stats: dict[str, Any]


def llm_context(cfg: RunConfig, endpoints: dict) -> LlmContext:
    cache = cfg.llm.cache_path or f"{cfg.output_dir}/cache/responses.sqlite"
    return LlmContext(
        endpoints=endpoints,
        cache_path=cache,
        run_id=cfg.resolved_run_id(),
        prices=dict(cfg.llm.prices),
        budget=cfg.llm.budget,
    )


def _retry_unless_run_stopper(task_obj, task_run, state) -> bool:
    """Retry a shard on transient errors, never on budget or endpoint-down stops."""
    try:
        state.result()
    except RUN_STOPPERS:
        return False
    except Exception:  # noqa: BLE001 - anything else is worth a retry
        return True
    return False


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_unless_run_stopper,
    cache_policy=NONE,
    task_run_name="{stage}-shard-{shard}",
)
def llm_shard(
    stage: str,
    shard: int,
    fingerprint: str,
    store: RunStore,
    ctx: LlmContext,
    work: Callable[[LlmClient], Awaitable[Any]],
) -> dict[str, Any]:
    """Run one shard through the gateway and commit its checkpoint."""
    result, usage = run_llm(ctx, work)
    stats = {**result.stats, "usage": usage}
    parts = {"table": result.table, "reviews": result.reviews, "dropped": result.dropped}
    store.write_shard(stage, shard, fingerprint, parts, stats)
    return stats


def split(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(start, size) for start in range(0, table.num_rows, size)]


def run_llm_stage(
    stage: str,
    cfg: RunConfig,
    store: RunStore,
    ctx: LlmContext,
    items: pa.Table,
    id_column: str,
    make_work: Callable[[pa.Table], Callable[[LlmClient], Awaitable[Any]]],
    section: Any,
    width: int | None = None,
) -> StageOutput:
    """Shard `items`, run missing shards on the task runner, return the combined checkpoints.

    `width`: items a shard works on at once when the stage goes in waves (default: all).
    """
    shards = split(items, cfg.shard_size)
    section_hash = stable_hash(section.model_dump(mode="json"))
    todo = []
    for number, shard in enumerate(shards):
        fingerprint = stable_hash([stage, section_hash, shard.column(id_column).to_pylist()])
        if store.has_shard(stage, number, fingerprint):
            log.info("%s: shard %d/%d already done, skipped", stage, number + 1, len(shards))
        else:
            todo.append((number, shard, fingerprint))
    if todo:
        ResponseCache(ctx.cache_path).close()  # create it (WAL) before workers race to
        busiest = max(ep.settings.max_concurrency for ep in ctx.endpoints.values())
        width = min(cfg.shard_size, width or cfg.shard_size)
        started = time.monotonic()
        with shard_runner(cfg, busiest, len(todo), width) as (runner, processes):
            shard_ctx = ctx.split_limits(processes)
            futures = [
                runner.submit(llm_shard, {"stage": stage, "shard": number,
                                          "fingerprint": fingerprint, "store": store,
                                          "ctx": shard_ctx, "work": make_work(shard)})
                for number, shard, fingerprint in todo
            ]  # fmt: skip
            gather(stage, len(shards), todo, futures, started)
    return collect(store, stage)


def gather(stage: str, total: int, todo: list, futures: list, started: float) -> None:
    """Wait for every shard in shard order, logging progress; then raise the first failure.

    Waiting for all before raising lets in-flight shards commit their checkpoints, so a
    run stopped by the budget or a dead endpoint resumes with as little to redo as possible.
    """
    done_items, failure = 0, None
    remaining = sum(shard.num_rows for _, shard, _ in todo)
    for (number, shard, _), future in zip(todo, futures, strict=True):
        try:
            stats = future.result()
        except Exception as err:  # noqa: BLE001 - re-raised below, after the others finish
            failure = failure or err
            continue
        done_items += shard.num_rows
        remaining -= shard.num_rows
        log.info("%s: shard %d/%d %s%s", stage, number + 1, total, _brief(stats),
                 _eta(started, done_items, remaining))  # fmt: skip
    if failure is not None:
        raise failure


def collect(store: RunStore, stage: str) -> StageOutput:
    shard_stats = store.shard_stats(stage)
    return StageOutput(
        table=store.read_part(stage, "table"),
        reviews=store.read_part(stage, "reviews"),
        dropped=store.read_part(stage, "dropped"),
        stats=sum_stats(shard_stats),
    )


def sum_stats(shard_stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Add numeric counters of all shards; merge their usage books."""
    total: dict[str, Any] = {}
    for stats in shard_stats:
        for key, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    total["usage"] = merge_usage([s.get("usage", {}) for s in shard_stats])
    total["shards"] = len(shard_stats)
    return total


def _brief(stats: dict[str, Any]) -> str:
    keys = ("accepted", "rejected", "failed", "calls", "cached")
    return " ".join(f"{k}={stats[k]}" for k in keys if k in stats)


def _eta(started: float, done: int, remaining: int) -> str:
    elapsed = time.monotonic() - started
    if not done or not remaining:
        return f" ({done} items in {elapsed:.0f}s)"
    rate = done / elapsed
    return f" ({rate * 60:.1f} items/min, ETA {remaining / rate:.0f}s for {remaining} items)"
