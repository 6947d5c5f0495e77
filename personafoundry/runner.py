"""Run one async LLM stage call with a gateway client bound to the run's cache and budget.

Prefect tasks are synchronous and run in worker threads; each shard opens its own event
loop and client here. The budget guard starts from what the run already paid (the cache
ledger), so a resumed run keeps counting from where it stopped.

Decisions:
- Shards of a stage run concurrently (threads of this process, or Dask worker processes),
  each in its own event loop. An `asyncio.Semaphore` per client would multiply the
  endpoint's `max_concurrency` by the number of shards in flight, so all clients of one
  process share one `SharedLimit` per endpoint URL: the cap holds for the process, and a
  shard that waits on a slow item never holds idle slots another shard could use. Across
  Dask worker processes the flow hands each process its share of the cap (see
  `flows/scale.py`).
- The budget guard of a shard starts from what the run had paid when the shard started;
  with shards in flight a cap can therefore be passed by what the other in-flight shards
  spend before they see it (at most one shard's spend each), and the run still stops.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from personafoundry.cache import ResponseCache
from personafoundry.config import Budget, Price
from personafoundry.llm import Endpoint, LlmClient
from personafoundry.usage import BudgetGuard

R = TypeVar("R")


@dataclass(frozen=True)
class LlmContext:
    """Everything a shard needs to build a client; plain data, safe to pass to tasks."""

    endpoints: dict[str, Endpoint]
    cache_path: str
    run_id: str
    prices: dict[str, Price] = field(default_factory=dict)
    budget: Budget = Budget()

    def models(self) -> dict[str, dict[str, str]]:
        """Role -> model, endpoint and dialect, without secrets (for manifests)."""
        return {
            role: {"model": ep.model, "endpoint": ep.identity, "dialect": ep.dialect}
            for role, ep in self.endpoints.items()
        }

    def split_limits(self, processes: int) -> LlmContext:
        """This context with each endpoint's `max_concurrency` divided among `processes`
        (Dask worker processes), at least 1 each, so that together they keep the cap."""
        if processes <= 1:
            return self
        endpoints = {
            role: replace(ep, settings=ep.settings.model_copy(update={
                "max_concurrency": max(1, ep.settings.max_concurrency // processes)}))
            for role, ep in self.endpoints.items()
        }  # fmt: skip
        return replace(self, endpoints=endpoints)


class SharedLimit:
    """A FIFO semaphore usable from the event loops of several threads at once.

    `async with limit:` takes a slot; a released slot is handed straight to the oldest
    waiter (woken in its own loop), so a waiter is never overtaken.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:  # never got a slot
                    self._waiters.remove(waiter)
                    raise
            if waiter.done() and not waiter.cancelled():  # got one just before the cancel
                self.release()
            raise  # else `_wake` sees the cancelled waiter and passes the slot on

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                try:
                    waiter.get_loop().call_soon_threadsafe(self._wake, waiter)
                    return
                except RuntimeError:  # its loop is closed: the waiter is gone
                    continue
            self._free += 1

    def _wake(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self.release()
        else:
            waiter.set_result(None)


_LIMITS: dict[tuple[str, int], SharedLimit] = {}
_LIMITS_LOCK = threading.Lock()


def shared_limits(endpoints: dict[str, Endpoint]) -> dict[str, SharedLimit]:
    """This process's limit per endpoint URL (the smallest `max_concurrency` of its roles)."""
    caps: dict[str, int] = {}
    for ep in endpoints.values():
        caps[ep.base_url] = min(ep.settings.max_concurrency, caps.get(ep.base_url, 1 << 30))
    with _LIMITS_LOCK:
        return {url: _LIMITS.setdefault((url, n), SharedLimit(n)) for url, n in caps.items()}


async def with_client(ctx: LlmContext, work: Callable[[LlmClient], Awaitable[R]]) -> tuple[R, dict]:
    """Await `work(llm)` with a fresh client; returns its result and the usage it caused."""
    cache = ResponseCache(ctx.cache_path)
    try:
        tokens, usd = cache.spent(ctx.run_id)
        guard = BudgetGuard(ctx.budget, tokens, usd)
        async with LlmClient(
            ctx.endpoints,
            cache,
            run_id=ctx.run_id,
            prices=ctx.prices,
            budget=guard,
            limits=shared_limits(ctx.endpoints),
        ) as llm:
            result = await work(llm)
            return result, llm.stats()
    finally:
        cache.close()


def run_llm(ctx: LlmContext, work: Callable[[LlmClient], Awaitable[R]]) -> tuple[R, dict[str, Any]]:
    """Synchronous entry for Prefect tasks and the CLI."""
    return asyncio.run(with_client(ctx, work))
