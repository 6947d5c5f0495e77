"""Where the shard tasks of a stage run: Prefect's thread pool, or a Dask cluster.

Decisions:
- `orchestration.task_runner = "threads"` (default): a `ThreadPoolTaskRunner` in the flow
  process with `parallel_shards` threads. All shards share this process's per-endpoint
  limit (`runner.SharedLimit`), so `max_concurrency` holds for the whole stage.
- `"dask"`: prefect-dask's `DaskTaskRunner` connected to `dask_address`, or, when that is
  empty, to one `distributed.LocalCluster` of `dask_workers` processes started for the whole
  pipeline (like the embedded server) instead of one per stage flow. Every worker process
  gets `max_concurrency // processes` (at least 1) of each endpoint, so the cluster as a
  whole keeps the cap.
- Default `parallel_shards`: enough shards in flight that their items fill the busiest
  endpoint's `max_concurrency`, plus one so a finishing shard's tail does not leave slots
  idle: `ceil(max_concurrency / width) + 1`, where width is the items a shard works on at
  once: `shard_size`, or `converse.wave_size` for conversations (they go in waves, for
  exemplar rotation; measured: 0.33 of the ideal with shard_size as the width). The
  embedded endpoint (one request at a time) thus keeps two shards in flight, which queue
  on the shared limit.
- Workers reach LLM endpoints by URL (the embedded server listens on this machine's
  loopback) and write checkpoints to `output_dir`: workers on other machines need an
  endpoint with a reachable `base_url` and an `output_dir` on a shared file system.
- In ephemeral mode the Prefect API is a server this process started; its URL is put in
  the settings that travel with each task, otherwise every worker would start its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from personafoundry.config import RunConfig

log = logging.getLogger("personafoundry.flows")
_CLUSTERS: list[str] = []  # the scheduler address of the LocalCluster an outer block opened


def parallel_shards(cfg: RunConfig, max_concurrency: int, width: int | None = None) -> int:
    """Shards of a stage in flight at once (see the module docstring); `width` is how many
    items one shard works on at once (conversations go in waves of `wave_size`)."""
    if cfg.orchestration.parallel_shards is not None:
        return cfg.orchestration.parallel_shards
    return -(-max_concurrency // (width or cfg.shard_size)) + 1


def _configured_concurrency(cfg: RunConfig) -> int:
    return max(cfg.llm.generator.max_concurrency, cfg.llm.critic.max_concurrency)


def _narrowest(cfg: RunConfig) -> int:
    """The fewest items a shard of any stage works on at once (sizes the Dask threads)."""
    return min(cfg.shard_size, cfg.converse.wave_size)


@contextmanager
def open_cluster(cfg: RunConfig) -> Iterator[str | None]:
    """Yield the Dask scheduler address for the block: None for threads, else the configured
    address or a LocalCluster started here (re-entrant: inner blocks reuse it)."""
    orch = cfg.orchestration
    if orch.task_runner != "dask":
        yield None
        return
    if orch.dask_address:
        yield orch.dask_address
        return
    if _CLUSTERS:
        yield _CLUSTERS[-1]
        return
    from distributed import LocalCluster

    wanted = parallel_shards(cfg, _configured_concurrency(cfg), _narrowest(cfg))
    threads = -(-wanted // orch.dask_workers)
    with LocalCluster(
        n_workers=orch.dask_workers,
        threads_per_worker=max(1, threads),
        processes=True,
        dashboard_address=":0",  # a free port, never a clash with a running 8787
        host="127.0.0.1",
    ) as cluster:
        log.info("dask: LocalCluster %s, %d workers x %d threads", cluster.scheduler_address,
                 orch.dask_workers, threads)  # fmt: skip
        _CLUSTERS.append(cluster.scheduler_address)
        try:
            yield cluster.scheduler_address
        finally:
            _CLUSTERS.remove(cluster.scheduler_address)


def _ephemeral_api_url() -> str | None:
    """The API URL of the temporary Prefect server this process runs, if that is the API."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer._instances.get(None)
    return server.api_url if server is not None and server.server_process else None


@contextmanager
def shard_runner(
    cfg: RunConfig, max_concurrency: int, shards: int, width: int | None = None
) -> Iterator[tuple[Any, int]]:
    """Yield a started task runner for a stage's shards and the number of processes that
    share each endpoint's cap (1 for threads, the cluster's worker count for Dask)."""
    if cfg.orchestration.task_runner == "threads":
        threads = max(1, min(parallel_shards(cfg, max_concurrency, width), shards))
        with ThreadPoolTaskRunner(max_workers=threads) as runner:
            yield runner, 1
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_dask import DaskTaskRunner

    with ExitStack() as stack:
        address = stack.enter_context(open_cluster(cfg))
        if url := _ephemeral_api_url():
            stack.enter_context(temporary_settings({PREFECT_API_URL: url}))
        runner = stack.enter_context(DaskTaskRunner(address=address))
        yield runner, max(1, len(runner.client.nthreads()))
