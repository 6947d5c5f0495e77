"""Markdown summaries of a stage for Prefect artifacts and the run folder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from personafoundry.validate import ValidationReport


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
            (
                "| role/model | requests | cache hits | prompt tok |"
                " completion tok | retries | failed calls | USD |"
            ),
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, u in usage.items():
            lines.append(
                f"| {key} | {u.get('requests', 0)} | {u.get('cache_hits', 0)} | "
                f"{u.get('prompt_tokens', 0)} | {u.get('completion_tokens', 0)} | "
                f"{u.get('retries', 0)} | {u.get('failed_calls', 0)} | {u.get('cost_usd', 0):.4f} |"
            )
    return "\n".join(lines) + "\n"


def validation_markdown(report: ValidationReport) -> str:
    """Per table: rows and checks passed/failed by kind, then each failure with examples."""
    from personafoundry.validate import describe_failure

    lines = [f"# validate: {'passed' if report.passed else 'FAILED'}", ""]
    lines += [
        "| table | rows | passed | failed | by kind (passed/checks) |",
        "|---|---|---|---|---|",
    ]
    for table in dict.fromkeys(r.table for r in report.results):
        results = [r for r in report.results if r.table == table]
        rows = next((r.element_count for r in results if r.kind == "schema"), "")
        kinds: dict[str, tuple[int, int]] = {}
        for r in results:
            ok, total = kinds.get(r.kind, (0, 0))
            kinds[r.kind] = (ok + r.success, total + 1)
        by_kind = ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in kinds.items())
        failed = sum(not r.success for r in results)
        lines.append(f"| {table} | {rows} | {len(results) - failed} | {failed} | {by_kind} |")
    if report.census:
        lines += ["", f"Census gate: {report.census.get('status')} ({report.census.get('note')})"]
    failures = report.failures()
    if failures:
        lines += ["", "## Failed checks", ""] + [f"- {describe_failure(r)}" for r in failures]
    return "\n".join(lines) + "\n"


def pairing_counts(stats: dict[str, Any], dropped: pa.Table | None) -> dict[str, int]:
    """Pairing counters for the conversations summary, from the `pairs` checkpoint.

    `short_personas` were left short of `per_persona` partners (`no_partner` rows of the
    pairs' `dropped` part); `missing_conversations` sums what each of them lacks, so a
    missing pair of two short personas counts twice.
    """
    short = dropped.num_rows if dropped is not None else 0
    missing = sum(dropped.column("missing").to_pylist()) if short else 0
    return {
        "pairing.personas": stats.get("personas", 0),
        "pairing.pairs": stats.get("pairs", 0),
        "pairing.short_personas": stats.get("short_personas", short),
        "pairing.missing_conversations": missing,
    }


def coverage_markdown(report: dict[str, Any]) -> str:
    """Facts planned vs revealed vs verified, and acceptance per document type."""
    lines = ["", "## Fact coverage", "", "| facts | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["facts"].items()]
    lines += ["", "## Acceptance by document type", ""]
    lines += ["| doc type | planned | accepted | rate |", "|---|---|---|---|"]
    lines += [
        f"| {r['doc_type']} | {r['planned']} | {r['accepted']} | {r['rate']:.2f} |"
        for r in report["by_type"]
    ]
    return "\n".join(lines) + "\n"
