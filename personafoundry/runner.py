"""Run one async LLM stage call with a gateway client bound to the run's cache and budget.

Prefect tasks are synchronous and run in worker threads; each shard opens its own event
loop and client here. The budget guard starts from what the run already paid (the cache
ledger), so a resumed run keeps counting from where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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


async def with_client(ctx: LlmContext, work: Callable[[LlmClient], Awaitable[R]]) -> tuple[R, dict]:
    """Await `work(llm)` with a fresh client; returns its result and the usage it caused."""
    cache = ResponseCache(ctx.cache_path)
    try:
        tokens, usd = cache.spent(ctx.run_id)
        guard = BudgetGuard(ctx.budget, tokens, usd)
        async with LlmClient(
            ctx.endpoints, cache, run_id=ctx.run_id, prices=ctx.prices, budget=guard
        ) as llm:
            result = await work(llm)
            return result, llm.stats()
    finally:
        cache.close()


def run_llm(ctx: LlmContext, work: Callable[[LlmClient], Awaitable[R]]) -> tuple[R, dict[str, Any]]:
    """Synchronous entry for Prefect tasks and the CLI."""
    return asyncio.run(with_client(ctx, work))
