"""PNG plots of how the release was made: critics, rounds, tokens, faithfulness, dedup.

Each function draws one plot from `report.json`'s figures into `path` and returns its
title, or None when the release has no data for it (the HTML then says so).

Decisions:
- Tokens are drawn twice: per role and model from the run's paid ledger (all resumes),
  and per stage and role/model from `run.stage_usage` when the run recorded it, because
  "which stage costs what" is the question a cost review asks first.
- The faithfulness funnel shows the documents chain (planned -> in an accepted document
  -> verified) and, as a separate bar, the facts conversations use: conversations are not
  planned per fact, so they are not a step of that chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from personafoundry.report_plot_style import SAMPLED, TARGET, save_plot

TOKENS_TITLE = "Tokens and cost per role and model"
STAGE_TOKENS_TITLE = "Tokens and cost per stage and model"
FUNNEL_STEPS = (
    ("facts", "facts in ledgers"),
    ("planned", "planned in a document"),
    ("in_accepted_documents", "in an accepted document"),
    ("verified", "verified revealed in a document"),
    ("used_in_conversations", "used in a conversation"),
    ("probed", "probed"),
)


def _stacked_tokens(ax: Any, labels: list[str], rows: list[dict[str, Any]]) -> None:
    """Prompt + completion tokens stacked per row, each bar ending in its cost and requests."""
    prompt = np.array([r["prompt_tokens"] for r in rows])
    completion = np.array([r["completion_tokens"] for r in rows])
    ax.barh(labels, prompt, color=TARGET, label="prompt tokens")
    ax.barh(labels, completion, left=prompt, color=SAMPLED, label="completion tokens")
    for i, r in enumerate(rows):
        note = f"  \\${r['cost_usd']:.4f}, {r['requests']} requests"
        if r.get("cache_hits"):
            note += f", {r['cache_hits']} from cache"
        ax.text(prompt[i] + completion[i], i, note, va="center", fontsize=9)
    ax.set_xlim(0, max(int((prompt + completion).max()), 1) * 1.3)  # room for the notes
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))


def plot_acceptance(f: dict[str, Any], path: Path) -> str | None:
    gen = f["generation"]
    stages, experts = gen.get("stages") or {}, gen.get("experts") or {}
    if not stages:
        return None
    fig = Figure(figsize=(12, 3 + 0.22 * len(experts)), layout="constrained")
    grid = fig.add_gridspec(1, 3)
    ax1, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1:])
    names = list(stages)
    ax1.bar(names, [stages[n]["acceptance_rate"] for n in names], color=SAMPLED)
    for i, n in enumerate(names):
        ax1.text(i, stages[n]["acceptance_rate"], f"{stages[n]['accepted']}/{stages[n]['items']}",
                 ha="center", va="bottom", fontsize=9)  # fmt: skip
    ax1.set_ylim(0, 1.1)
    ax1.set_title("items accepted per stage", fontsize=10)
    keys = list(experts)
    ax2.barh(keys, [experts[k]["pass_rate"] for k in keys], color=TARGET)
    ax2.set_xlim(0, 1)
    ax2.invert_yaxis()
    ax2.tick_params(axis="y", labelsize=8)
    ax2.set_title("verdicts passed per critic expert", fontsize=10)
    title = "Critic acceptance per stage and expert"
    save_plot(fig, path, title)
    return title


def plot_rounds_scores(f: dict[str, Any], path: Path) -> str | None:
    gen = f["generation"]
    stages, scores = gen.get("stages") or {}, gen.get("scores") or {}
    if not stages:
        return None
    fig = Figure(figsize=(13, 5 + 0.2 * len(scores)), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    rounds = sorted({int(r) for s in stages.values() for r in s["rounds_accepted"]}) or [1]
    width = 0.8 / max(len(stages), 1)
    for i, (name, s) in enumerate(stages.items()):
        counts = [s["rounds_accepted"].get(str(r), 0) for r in rounds]
        ax1.bar(np.arange(len(rounds)) + i * width, counts, width, label=name)
    ax1.set_xticks(np.arange(len(rounds)) + width * (len(stages) - 1) / 2, map(str, rounds))
    ax1.set_xlabel("rounds")
    ax1.set_ylabel("accepted items")
    ax1.legend(fontsize=8)
    ax1.set_title("rounds needed by accepted items", fontsize=10)
    values = sorted({float(v) for s in scores.values() for v in s})
    if values:
        grid = np.array([[scores[k].get(f"{v:g}", 0) for v in values] for k in scores], float)
        grid /= np.maximum(grid.sum(axis=1, keepdims=True), 1)
        ax2.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=1)
        ax2.set_xticks(range(len(values)), [f"{v:g}" for v in values])
        ax2.set_yticks(range(len(scores)), list(scores), fontsize=8)
        ax2.set_xlabel("score")
    ax2.set_title("score distribution per expert (share of its verdicts)", fontsize=10)
    title = "Rounds and critic scores"
    save_plot(fig, path, title)
    return title


def plot_tokens(f: dict[str, Any], path: Path) -> str | None:
    rows = f["generation"].get("tokens") or []
    if not rows:
        return None
    fig = Figure(figsize=(10, 2.5 + 0.5 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    _stacked_tokens(ax, [f"{r['role']} / {r['model']}" for r in rows], rows)
    ax.set_xlabel("tokens paid (response-cache ledger, all resumes)")
    save_plot(fig, path, TOKENS_TITLE)
    return TOKENS_TITLE


def plot_tokens_by_stage(f: dict[str, Any], path: Path) -> str | None:
    rows = f["generation"].get("tokens_by_stage") or []
    if not rows:
        return None
    fig = Figure(figsize=(11, 2.5 + 0.45 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    _stacked_tokens(ax, [f"{r['stage']}: {r['role_model']}" for r in rows], rows)
    ax.set_xlabel("tokens paid in the stage (run.stage_usage)")
    save_plot(fig, path, STAGE_TOKENS_TITLE)
    return STAGE_TOKENS_TITLE


def plot_faithfulness(f: dict[str, Any], path: Path) -> str | None:
    faith = f.get("faithfulness") or {}
    funnel = faith.get("funnel") or {}
    if not funnel.get("facts"):
        return None
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    steps = [(k, label) for k, label in FUNNEL_STEPS if funnel.get(k) is not None]
    colors = [TARGET if k == "used_in_conversations" else SAMPLED for k, _ in steps]
    ax1.barh([label for _, label in steps], [funnel[k] for k, _ in steps], color=colors)
    for i, (k, _) in enumerate(steps):
        ax1.text(funnel[k], i, f" {funnel[k]}", va="center", fontsize=9)
    ax1.invert_yaxis()
    ax1.set_title("persona facts through documents, conversations and probes", fontsize=10)
    kinds = faith.get("probes_by_kind") or {}
    ax2.bar(list(kinds), list(kinds.values()), color=TARGET)
    ax2.set_title("probes by kind", fontsize=10)
    title = "Faithfulness: facts planned, revealed, used in conversations, probed"
    save_plot(fig, path, title)
    return title


def plot_dedup(f: dict[str, Any], path: Path) -> str | None:
    tables = (f.get("dedup") or {}).get("tables") or {}
    if not tables:
        return None
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    names = list(tables)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [tables[n]["clusters"] for n in names], 0.4, color=TARGET, label="clusters")
    ax.bar(x + 0.2, [tables[n]["rows_removed"] for n in names], 0.4, color=SAMPLED,
           label="rows removed")  # fmt: skip
    ax.set_xticks(x, names)
    ax.legend(fontsize=8)
    title = "Near-duplicates: clusters and rows removed per table"
    save_plot(fig, path, title)
    return title
