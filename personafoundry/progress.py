"""Console progress of a sharded stage: one line per finished shard, in items, with rate and ETA.

Decisions:
- Lines come in the order shards finish, not in shard order (the tables are read back from
  the checkpoints in shard order anyway, so the order of the lines changes no row).
- Progress counts items (personas, pairs, planned documents), not shards: the last shard
  is usually smaller, and "41/64 items" is what a user asked for.
- Items of shards skipped on resume count as done from the start, but not towards the
  rate: the rate is the items this attempt finished per second since its first shard was
  submitted, so the ETA is not flattered by an earlier attempt's work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BRIEF_KEYS = ("accepted", "rejected", "failed", "calls", "cached")


def brief(stats: dict[str, Any]) -> str:
    """The shard's headline counters: `accepted=2 rejected=0`."""
    return " ".join(f"{k}={_number(stats[k])}" for k in BRIEF_KEYS if k in stats)


def _number(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


@dataclass
class StageProgress:
    """Items done out of a stage's total, updated as shards are skipped or finish."""

    stage: str
    total_items: int
    total_shards: int
    clock: Callable[[], float] = time.monotonic
    done_items: int = 0
    run_items: int = 0
    started: float | None = field(default=None)

    def skip(self, items: int) -> None:
        """A shard committed by an earlier attempt: done, but not part of this attempt's rate."""
        self.done_items += items

    def start(self) -> None:
        """The first shard of this attempt was submitted (later calls keep the first time)."""
        if self.started is None:
            self.started = self.clock()

    def finish(self, shard: int, items: int, stats: dict[str, Any]) -> str:
        """Count a finished shard (0-based number); return its progress line.

        `personas: shard 2/3 accepted=2 rejected=0 | 4/6 items (67%), 1.5 items/s, ETA 1s`
        """
        self.start()
        self.done_items += items
        self.run_items += items
        elapsed = max(self.clock() - (self.started or 0.0), 1e-9)
        rate = self.run_items / elapsed
        remaining = self.total_items - self.done_items
        share = self.done_items / self.total_items if self.total_items else 1.0
        tail = f"ETA {remaining / rate:.0f}s" if remaining > 0 else f"done in {elapsed:.0f}s"
        counters = brief(stats)
        return (
            f"{self.stage}: shard {shard + 1}/{self.total_shards}{' ' if counters else ''}"
            f"{counters} | {self.done_items}/{self.total_items} items ({share:.0%}), "
            f"{rate:.2f} items/s, {tail}"
        )
