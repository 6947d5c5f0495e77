"""The run-summary counters of the conversations stage (`ConverseResult.stats`).

Every call reports `requested`, `accepted` and `shortfall` (requested minus accepted, never
negative), and the `stopped.*` counters say which cap caused a shortfall:

- `stopped.attempt_cap`: pairs that used every round of every attempt
  (`max_rounds` x `max_attempts`) without an accepted draft;
- `stopped.unknown_persona`: pairs naming a persona that is not in the personas table;
- `stopped.out_of_pairs`: with a `target`, accepted conversations still missing when no
  planned pair was left (the two counters above say why the pairs ran out).

Without a target each pair is one requested conversation, so `shortfall` equals
`stopped.attempt_cap + stopped.unknown_persona`; with one, `shortfall` equals
`stopped.out_of_pairs`. The pairs of a call are `started`, `unused_pairs` (reserves never
started once the target was met: `dropped` as `not_needed`) and `stopped.unknown_persona`.
Rejected conversations are also counted by reason:
`rejected.generator` / `rejected.critics` (was the last round a failed draft or a critic
rejection) and `rejected_by.<expert>` (each expert that failed the last round, once per
conversation). `failed.<expert>` counts failed verdicts over every round.

A budget stop has no counter: `BudgetExceeded` is raised by the gateway between requests
and propagates out of the stage (`llm.py`), so the shard returns no stats; the run stops
with that error, which names the cap reached and the setting to raise, and resumes from
the shards already checkpointed.

All values are numbers. Counters add up across the shards of a stage, ratios do not:
`sum_stats` in `flows/shards.py` recomputes `acceptance_rate` (accepted / `started`, the
pairs whose conversation was started) and each `*_per_accepted` (the mean weighted by
each shard's `accepted`) from the summed counters. With a target, a shard's `requested`
is its share of what was still missing when its batch started, so `requested`,
`shortfall` and `stopped.out_of_pairs` are restated for the stage by
`conversation_batches.stage_totals` (`requested` = the target).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from personafoundry.config import ConverseConfig
from personafoundry.critic import GENERATOR_EXPERT
from personafoundry.llm import LlmClient

if TYPE_CHECKING:
    from personafoundry.converse import Outcome

USAGE_COUNTERS = ("requests", "cache_hits", "prompt_tokens", "completion_tokens", "invalid_replies")


def usage_counters(llm: LlmClient) -> dict[str, float]:
    """`<role>_<counter>` totals of the client so far, summed over models."""
    out: dict[str, float] = {}
    for key, counters in llm.stats().items():
        role = key.split("/")[0]
        for name in USAGE_COUNTERS:
            out[f"{role}_{name}"] = out.get(f"{role}_{name}", 0) + counters[name]
    return out


def stage_stats(
    outcomes: list[Outcome], usage: dict[str, float], *, unknown: int, unused: int,
    target: int | None,
) -> dict[str, float]:  # fmt: skip
    """Counters of one call; `usage` holds this call's deltas of `usage_counters`.

    `unknown`: pairs dropped for an unknown persona; `unused`: pairs not started because
    the target was reached.
    """
    accepted = [o for o in outcomes if o.accepted]
    rejected = [o for o in outcomes if not o.accepted]
    pairs = len(outcomes) + unknown + unused
    requested = target if target is not None else pairs
    shortfall = max(0, requested - len(accepted))
    tokens = sum(
        usage.get(f"{r}_{k}", 0)
        for r in ("generator", "critic")
        for k in ("prompt_tokens", "completion_tokens")
    )
    n_acc = len(accepted)
    stats: dict[str, float] = dict(usage)
    stats |= {
        "pairs": pairs, "unused_pairs": unused, "started": len(outcomes), "requested": requested,
        "accepted": n_acc, "shortfall": shortfall,
        "stopped.attempt_cap": len(rejected), "stopped.unknown_persona": unknown,
        "stopped.out_of_pairs": shortfall if target is not None else 0,
        "rejected": len(rejected) + unknown,
        "rejected.generator": 0, "rejected.critics": 0,
        "acceptance_rate": n_acc / len(outcomes) if outcomes else 0.0,
        "rounds": sum(o.rounds for o in outcomes),
        "rounds_per_accepted": sum(o.rounds for o in accepted) / n_acc if n_acc else 0.0,
        "tokens": tokens, "tokens_per_accepted": tokens / n_acc if n_acc else 0.0,
    }  # fmt: skip
    for o in outcomes:
        for row in o.reviews:
            if not row["passed"]:
                _bump(stats, f"failed.{row['expert']}")
    for o in rejected:
        generator = any(v.expert == GENERATOR_EXPERT for v in o.verdicts)
        _bump(stats, "rejected.generator" if generator else "rejected.critics")
        for expert in dict.fromkeys(v.expert for v in o.verdicts if not v.passed):
            _bump(stats, f"rejected_by.{expert}")
    return stats


def _bump(stats: dict[str, float], key: str) -> None:
    stats[key] = stats.get(key, 0) + 1


def shortfall_causes(stats: dict[str, Any], cfg: ConverseConfig) -> list[str]:
    """What stopped the stage short of `requested`, one phrase per cap ([] if not short)."""
    if not stats.get("shortfall"):
        return []
    parts = []
    if stats["stopped.attempt_cap"]:
        parts.append(
            f"attempt cap ({cfg.max_attempts} x {cfg.max_rounds} rounds) reached for "
            f"{stats['stopped.attempt_cap']:.0f} pairs"
        )
    if stats["stopped.unknown_persona"]:
        parts.append(f"{stats['stopped.unknown_persona']:.0f} pairs name unknown personas")
    if stats["stopped.out_of_pairs"]:
        parts.append(f"no planned pair left for {stats['stopped.out_of_pairs']:.0f}")
    if stats.get("unused_pairs"):  # a stage's last batch: reserves of shards that met their share
        parts.append(
            f"{stats['unused_pairs']:.0f} reserve pairs unused by shards that met their share"
        )
    return parts


def shortfall_text(stats: dict[str, Any], cfg: ConverseConfig) -> str:
    """Why fewer conversations than requested were accepted, for the stage's log line."""
    causes = shortfall_causes(stats, cfg)
    return f"; short by {stats['shortfall']:.0f}: " + ", ".join(causes) if causes else ""


def shortfall_markdown(stats: dict[str, Any], cfg: ConverseConfig) -> str:
    """The shortfall and its causes as a paragraph for the stage's artifact ("" if none)."""
    causes = shortfall_causes(stats, cfg)
    if not causes:
        return ""
    short, requested = stats["shortfall"], stats["requested"]
    return f"\n**Short by {short:.0f} of {requested:.0f} requested**: {', '.join(causes)}.\n"
