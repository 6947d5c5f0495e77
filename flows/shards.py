"""Shared wiring for stage flows: sharding, checkpoints, the LLM shard task, progress.

A shard is one Prefect task whose LLM calls run concurrently inside it. The missing shards
of a stage are submitted together to the task runner of `orchestration.task_runner`
(`flows/scale.py`), which keeps `parallel_shards` of them in flight; their calls share
each endpoint's `max_concurrency`, so the limit holds for the stage, not per shard.
A progress line is logged as each shard finishes (`personafoundry.progress`), but a
stage's tables are read back from the checkpoints in shard order, so they are the same
whatever runner and timing. A shard whose checkpoint exists (same input fingerprint) is
skipped, so a rerun or `--resume` only does what is missing; within a shard, the response
cache makes re-done calls free. A stage may run its shards in generations (`Generations`:
conversations hand the best accepted ones of earlier shards on as few-shot exemplars, and
the number of accepted ones still missing); each generation waits for the one before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NONE
from prefect.futures import as_completed

from flows.scale import shard_runner
from personafoundry.cache import ResponseCache
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.errors import BudgetExceeded, EndpointError
from personafoundry.ids import stable_hash
from personafoundry.llm import LlmClient
from personafoundry.progress import StageProgress
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
    extra_parts: Callable[[Any], dict[str, pa.Table]] | None = None,
) -> dict[str, Any]:
    """Run one shard through the gateway and commit its checkpoint."""
    result, usage = run_llm(ctx, work)
    stats = {**result.stats, "usage": usage}
    parts = {"table": result.table, "reviews": result.reviews, "dropped": result.dropped}
    parts |= extra_parts(result) if extra_parts else {}
    store.write_shard(stage, shard, fingerprint, parts, stats)
    return stats


def split(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(start, size) for start in range(0, table.num_rows, size)]


@dataclass(frozen=True)
class Generations:
    """Shards run in generations; each generation is given what the earlier ones produced.

    `plan`: shard count -> shard numbers per generation. `given(earlier, items)`: the shard
    numbers of the earlier generations and the item count of each shard of the next
    generation -> what each of those shards gets, in order (JSON-like; part of its
    fingerprint, so a shard is redone when what it is given changes).
    """

    plan: Callable[[int], list[range]]
    given: Callable[[range, list[int]], list[Any]]


def run_llm_stage(
    stage: str,
    cfg: RunConfig,
    store: RunStore,
    ctx: LlmContext,
    items: pa.Table,
    id_column: str,
    make_work: Callable[[pa.Table, Any], Callable[[LlmClient], Awaitable[Any]]],
    section: Any,
    width: int | None = None,
    extra_parts: Callable[[Any], dict[str, pa.Table]] | None = None,
    generations: Generations | None = None,
) -> StageOutput:
    """Shard `items`, run missing shards on the task runner, return the combined checkpoints.

    `make_work(shard, given)`: the shard's work; `given` is None without `generations`.
    `width`: items a shard works on at once when the stage goes in waves (default: all).
    `extra_parts(result)`: more tables of the stage's result to checkpoint per shard.
    """
    shards = split(items, cfg.shard_size)
    store.plan_stage(stage, len(shards))  # stale higher shards of an earlier attempt: ignored
    section_hash = stable_hash(section.model_dump(mode="json"))
    progress = StageProgress(stage, items.num_rows, len(shards))
    plan = generations.plan(len(shards)) if generations else [range(len(shards))]
    with ExitStack() as stack:
        opened = None  # the task runner, opened for the first shard to run
        for generation in plan:
            givens = (
                generations.given(range(generation.start), [shards[n].num_rows for n in generation])
                if generations
                else [None] * len(generation)
            )
            todo = []
            for number, given in zip(generation, givens, strict=True):
                ids = shards[number].column(id_column).to_pylist()
                key = [stage, section_hash, ids] + ([given] if generations else [])
                fingerprint = stable_hash(key)
                if store.has_shard(stage, number, fingerprint):
                    progress.skip(shards[number].num_rows)
                    log.info("%s: shard %d/%d already done, skipped", stage, number + 1,
                             len(shards))  # fmt: skip
                else:
                    todo.append((number, shards[number], fingerprint, given))
            if not todo:
                continue
            if opened is None:
                opened = stack.enter_context(_runner(cfg, ctx, len(shards), width))
            runner, shard_ctx = opened
            progress.start()
            futures = [
                runner.submit(llm_shard, {"stage": stage, "shard": number,
                                          "fingerprint": fingerprint, "store": store,
                                          "ctx": shard_ctx, "work": make_work(shard, given),
                                          "extra_parts": extra_parts})
                for number, shard, fingerprint, given in todo
            ]  # fmt: skip
            gather(progress, todo, futures)
    return collect(store, stage)


@contextmanager
def _runner(cfg: RunConfig, ctx: LlmContext, shards: int, width: int | None) -> Iterator[tuple]:
    """The stage's task runner and the LLM context its shards share the endpoint caps in."""
    ResponseCache(ctx.cache_path).close()  # create it (WAL) before workers race to
    busiest = max(ep.settings.max_concurrency for ep in ctx.endpoints.values())
    width = min(cfg.shard_size, width or cfg.shard_size)
    with shard_runner(cfg, busiest, shards, width) as (runner, processes):
        yield runner, ctx.split_limits(processes)


def gather(progress: StageProgress, todo: list, futures: list) -> None:
    """Wait for every shard, logging progress as each finishes; then raise a failure.

    Waiting for all before raising lets in-flight shards commit their checkpoints, so a
    run stopped by the budget or a dead endpoint resumes with as little to redo as possible.
    The failure raised is the lowest-numbered shard's, whatever the order they failed in.
    """
    shard_of = {future: (number, shard.num_rows) for (number, shard, *_), future
                in zip(todo, futures, strict=True)}  # fmt: skip
    failures: dict[int, BaseException] = {}
    for future in as_completed(futures):
        number, items = shard_of[future]
        try:
            stats = future.result()
        except Exception as err:  # noqa: BLE001 - re-raised below, after the others finish
            failures[number] = err
            continue
        log.info("%s", progress.finish(number, items, stats))
    if failures:
        raise failures[min(failures)]


def collect(store: RunStore, stage: str) -> StageOutput:
    shard_stats = store.shard_stats(stage)
    return StageOutput(
        table=store.read_part(stage, "table"),
        reviews=store.read_part(stage, "reviews"),
        dropped=store.read_part(stage, "dropped"),
        stats=sum_stats(shard_stats),
    )


def sum_stats(shard_stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Add numeric counters of all shards; merge their usage books.

    Ratios do not add up: `*_per_accepted` becomes the mean weighted by each shard's
    `accepted` (exact), `acceptance_rate` becomes `accepted / started` over the stage
    (`accepted / requested` for shards that do not count `started`). Stage-specific
    restatements (a conversation target) are the stage's own (`conversation_batches`).
    """
    total: dict[str, Any] = {}
    weighted: dict[str, float] = {}
    for stats in shard_stats:
        for key, value in stats.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if key.endswith("_per_accepted"):
                weighted[key] = weighted.get(key, 0.0) + value * stats.get("accepted", 0)
            elif key != "acceptance_rate":
                total[key] = total.get(key, 0) + value
    accepted = total.get("accepted", 0)
    total |= {key: value / accepted if accepted else 0.0 for key, value in weighted.items()}
    if any("acceptance_rate" in s for s in shard_stats):
        tried = total.get("started", total.get("requested", 0))
        total["acceptance_rate"] = accepted / tried if tried else 0.0
    total["usage"] = merge_usage([s.get("usage", {}) for s in shard_stats])
    total["shards"] = len(shard_stats)
    return total
