"""What each batch of conversation shards is given: exemplars and its share of the target.

The conversations stage runs its shards in batches (`exemplar_pool.shard_generations`:
1, 3, 12, 48, ... shards); the shards of a batch run in parallel, and each batch starts
from what the earlier batches checkpointed.

Decisions:
- With `converse.target`, a batch is given the accepted conversations still missing: the
  target minus those the earlier batches accepted, read back from their checkpoints in
  shard order. It is split over the batch's shards in proportion to their pairs, the
  remainder one each to the first shards, and capped at a shard's pairs (a share exceeds
  the pairs only when the whole batch is short of pairs, and then every shard works all
  of its pairs anyway). A shard stops at its share (`generate_conversations(target=...)`),
  so later batches make up the shortfalls of earlier ones; once the target is met every
  later shard gets 0 and records its pairs as `not_needed` without a call.
- Why fixed shares and not one counter the shards share: a share fixed before the batch
  starts keeps the tables the same on every task runner, on resume and whatever the
  timing. The price: in the last batch, a shard that meets its share leaves its reserves
  unused while a sibling may fall short; the stage then reports the shortfall together
  with those `unused_pairs` (`conversation_stats.shortfall_causes`).
- What a shard is given (exemplar pool and share) is part of its fingerprint
  (`flows/shards.py`): a shard is redone when an earlier one is redone with another
  number accepted.
- Without a target a shard's share is None: one conversation requested per pair.
- Stage counters (`stage_totals`): the shards' `requested` are shares of what was missing
  when their batch started, so they do not add up; the stage's `requested` is the
  target, `shortfall` the target minus the accepted ones, and `stopped.out_of_pairs` that
  shortfall (every planned pair was accepted, hit the attempt cap, named an unknown
  persona or was a reserve its shard did not need). A budget cap has no counter: it stops
  the run with `BudgetExceeded`, naming the cap.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from personafoundry.config import ConverseConfig
from personafoundry.exemplar_pool import generation_pool

ALWAYS = ("pairs", "requested", "accepted", "shortfall", "stopped.attempt_cap",
          "stopped.unknown_persona", "stopped.out_of_pairs")  # fmt: skip


def shard_shares(missing: int, pairs: list[int]) -> list[int]:
    """`missing` split over shards in proportion to their `pairs`, the remainder one each
    to the first shards, each capped at its pairs: shard_shares(5, [2, 2, 1]) == [2, 2, 1],
    shard_shares(3, [4, 4, 2]) == [2, 1, 0]."""
    total = sum(pairs)
    if missing <= 0 or total == 0:
        return [0] * len(pairs)
    shares = [missing * n // total for n in pairs]
    for i in range(missing - sum(shares)):
        shares[i % len(shares)] += 1
    return [min(share, n) for share, n in zip(shares, pairs, strict=True)]


def batch_targets(
    target: int | None, earlier_stats: list[dict[str, Any]], pairs: list[int]
) -> list[int | None]:
    """Each shard's share of what is still missing after the earlier batches' accepted."""
    if target is None:
        return [None] * len(pairs)
    accepted = sum(int(s.get("accepted", 0)) for s in earlier_stats)
    return list(shard_shares(target - accepted, pairs))


def batch_inputs(
    cfg: ConverseConfig,
    earlier_exemplars: pa.Table | None,
    earlier_stats: list[dict[str, Any]],
    pairs: list[int],
) -> list[dict[str, Any]]:
    """What each shard of a batch is given: `{"exemplars": pool, "target": share}`.

    `earlier_exemplars` / `earlier_stats`: the `exemplars` part and the stats of the
    earlier batches' checkpoints, in shard order; `pairs`: the pairs of each shard of the
    batch.
    """
    pool = generation_pool(earlier_exemplars, cfg)
    return [
        {"exemplars": pool, "target": share}
        for share in batch_targets(cfg.target, earlier_stats, pairs)
    ]


def stage_totals(
    stats: dict[str, Any], cfg: ConverseConfig, pairing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The stage's counters from the shards' summed ones (`flows.shards.sum_stats`).

    The `ALWAYS` counters are there even when no shard ran. With a target, `requested`,
    `shortfall` and `stopped.out_of_pairs` are restated for the stage (module docstring). `pairing`: the `pairs` checkpoint's stats, whose
    `pairs_wanted` and `per_persona` are added as `pairing.*`.
    """
    out = dict.fromkeys(ALWAYS, 0) | stats  # a stage with no pairs ran no shard
    for key in ("pairs_wanted", "per_persona"):
        if pairing and key in pairing:
            out[f"pairing.{key}"] = pairing[key]
    if cfg.target is None:
        return out
    shortfall = max(0, cfg.target - out.get("accepted", 0))
    return out | {
        "requested": cfg.target,
        "shortfall": shortfall,
        "stopped.out_of_pairs": shortfall,
    }
