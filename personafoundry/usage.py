"""Token, request and cost accounting per role and model, and the run's budget cap.

Counts here are what this client did in this process (requests sent, cache hits,
retries, failures). The run's paid totals across crashes and resumes come from the
response cache ledger (`ResponseCache.spent`), which the budget starts from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from personafoundry.config import Budget, Price
from personafoundry.errors import BudgetExceeded

COUNTERS = (
    "requests",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "retries",
    "transport_failures",
    "invalid_replies",
    "failed_calls",
    "cached_tokens",
)


@dataclass
class RoleUsage:
    """Counters for one (role, model) pair."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    transport_failures: int = 0
    invalid_replies: int = 0
    failed_calls: int = 0
    cached_tokens: int = 0  # tokens of replies served from the cache (not paid again)
    cost_usd: float = 0.0


@dataclass
class UsageBook:
    """All counters of one client, keyed `role/model`."""

    by_key: dict[str, RoleUsage] = field(default_factory=dict)

    def for_role(self, role: str, model: str) -> RoleUsage:
        return self.by_key.setdefault(f"{role}/{model}", RoleUsage())

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {key: asdict(value) for key, value in sorted(self.by_key.items())}

    def totals(self) -> dict[str, float]:
        total = RoleUsage()
        for usage in self.by_key.values():
            for name in (*COUNTERS, "cost_usd"):
                setattr(total, name, getattr(total, name) + getattr(usage, name))
        return asdict(total)


def merge_usage(books: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Sum `UsageBook.as_dict()` outputs of several shards or clients."""
    merged: dict[str, dict[str, float]] = {}
    for book in books:
        for key, counters in book.items():
            target = merged.setdefault(key, dict.fromkeys(counters, 0))
            for name, value in counters.items():
                target[name] = target.get(name, 0) + value
    return dict(sorted(merged.items()))


def price_of(prices: dict[str, Price], model: str, prompt: int, completion: int) -> float:
    """USD for one reply; models missing from the price table cost 0 (local models)."""
    price = prices.get(model)
    if price is None:
        return 0.0
    return prompt / 1000 * price.prompt_per_1k + completion / 1000 * price.completion_per_1k


@dataclass
class BudgetGuard:
    """Stops the run between requests once a cap is reached; resumable with a higher cap."""

    budget: Budget
    spent_tokens: int = 0
    spent_usd: float = 0.0

    def charge(self, tokens: int, usd: float) -> None:
        self.spent_tokens += tokens
        self.spent_usd += usd

    def check(self) -> None:
        cap_tokens, cap_usd = self.budget.max_tokens, self.budget.max_cost_usd
        if cap_tokens is not None and self.spent_tokens >= cap_tokens:
            raise BudgetExceeded(
                f"token budget reached: {self.spent_tokens} of {cap_tokens} tokens spent; "
                "the run stopped cleanly, resume it with a higher llm.budget.max_tokens."
            )
        if cap_usd is not None and self.spent_usd >= cap_usd:
            raise BudgetExceeded(
                f"cost budget reached: ${self.spent_usd:.4f} of ${cap_usd:.4f} spent; "
                "the run stopped cleanly, resume it with a higher llm.budget.max_cost_usd."
            )
