"""Markdown summaries of a stage for Prefect artifacts and the run folder."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def expert_table(reviews: pa.Table | None) -> list[dict[str, Any]]:
    """Pass rate and mean score per critic expert over every reviewed attempt."""
    if reviews is None or reviews.num_rows == 0:
        return []
    grouped = reviews.group_by("expert").aggregate(
        [("passed", "mean"), ("score", "mean"), ("passed", "count")]
    )
    rows = grouped.to_pylist()
    return sorted(
        (
            {
                "expert": r["expert"],
                "attempts": r["passed_count"],
                "pass_rate": round(r["passed_mean"] or 0.0, 3),
                "mean_score": None if r["score_mean"] is None else round(r["score_mean"], 2),
            }
            for r in rows
        ),
        key=lambda r: r["expert"],
    )


def stage_markdown(stage: str, stats: dict[str, Any], reviews: pa.Table | None) -> str:
    """Counts, acceptance by expert and token usage of one stage."""
    lines = [f"# {stage}", ""]
    counters = {k: v for k, v in stats.items() if isinstance(v, (int, float))}
    if counters:
        lines += ["| counter | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(counters.items())]
    experts = expert_table(reviews)
    if experts:
        lines += ["", "## Critic experts", "", "| expert | attempts | pass rate | mean score |"]
        lines += ["|---|---|---|---|"]
        lines += [
            f"| {e['expert']} | {e['attempts']} | {e['pass_rate']} | {e['mean_score']} |"
            for e in experts
        ]
    usage = stats.get("usage") or {}
    if usage:
        lines += [
            "",
            "## LLM usage",
            "",
            "| role/model | requests | cache hits | prompt tok |"
            " completion tok | retries | failed calls | USD |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, u in usage.items():
            lines.append(
                f"| {key} | {u.get('requests', 0)} | {u.get('cache_hits', 0)} | "
                f"{u.get('prompt_tokens', 0)} | {u.get('completion_tokens', 0)} | "
                f"{u.get('retries', 0)} | {u.get('failed_calls', 0)} | {u.get('cost_usd', 0):.4f} |"
            )
    return "\n".join(lines) + "\n"
