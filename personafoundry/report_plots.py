"""PNG plots of the report figures, drawn with matplotlib, and the list of them.

`PLOTS` names every plot file in the order the HTML shows them. This module draws the
plots about who is in the release and what they say (population, text, skew);
`report_plots_generation` draws those about how it was made; `report_plot_style` holds
the shared look (Agg figures, titles as PNG metadata).

Decisions:
- A plot whose figures are empty (no reviews, no census personas) is not drawn; the HTML
  says why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from personafoundry.plot_helper import draw_plots
from personafoundry.report_plot_style import (
    ACCENT,
    SAMPLED,
    TRAITS,
    paired_bars,
    save_plot,
    short,
)
from personafoundry.report_plots_generation import (
    plot_acceptance,
    plot_dedup,
    plot_faithfulness,
    plot_rounds_scores,
    plot_tokens,
    plot_tokens_by_stage,
)


def plot_population(f: dict[str, Any], path: Path) -> str | None:
    pop = f["population"]
    attrs = {k: v for k, v in (pop.get("attributes") or {}).items() if k != "state"}
    if not attrs:
        return None
    cols = 3
    rows = -(-len(attrs) // cols)
    fig = Figure(figsize=(16, 3.6 * rows), layout="constrained")
    for i, (name, a) in enumerate(attrs.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        cats = a["categories"]
        paired_bars(ax, [c["category"] for c in cats], [c["target"] for c in cats],
              [c["sampled"] for c in cats])  # fmt: skip
        ax.set_title(f"{name} (n={a['n']}, TVD {a['tvd']:.3f})", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        if i == 0:
            ax.legend(fontsize=8)
    title = "Population vs census: share of each category"
    save_plot(fig, path, title)
    return title


def plot_pyramid(f: dict[str, Any], path: Path) -> str | None:
    p = f["population"].get("pyramid") or {}
    if not p:
        return None
    fig = Figure(figsize=(9, 6), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(p["bands"]))
    ax.barh(y, -np.array(p["male"]), 0.8, color=SAMPLED, alpha=0.75, label="sampled male")
    ax.barh(y, p["female"], 0.8, color=ACCENT, alpha=0.75, label="sampled female")
    ax.step(-np.array(p["ref_male"]), y, where="mid", color="black", label="ACS reference")
    ax.step(p["ref_female"], y, where="mid", color="black")
    ax.set_yticks(y, p["bands"], fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("share of census personas (male left, female right)")
    ax.legend(fontsize=8, loc="upper right")
    title = "Age-sex pyramid vs ACS 2023"
    save_plot(fig, path, title)
    return title


def plot_states(f: dict[str, Any], path: Path) -> str | None:
    states = f["population"].get("states") or []
    if not states:
        return None
    fig = Figure(figsize=(8, 13), layout="constrained")
    ax = fig.add_subplot()
    paired_bars(ax, [s["category"] for s in states], [s["target"] for s in states],
          [s["sampled"] for s in states])  # fmt: skip
    ax.set_xlabel("share of census personas")
    ax.legend(fontsize=8, loc="lower right")
    title = "States ranked by census share: sampled vs PEP 2023"
    save_plot(fig, path, title)
    return title


def plot_tvd(f: dict[str, Any], path: Path) -> str | None:
    tvd = f["population"].get("tvd") or {}
    if not tvd:
        return None
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    names = list(tvd)
    ax.barh(names, [tvd[n] for n in names], color=SAMPLED)
    limit = (f["population"].get("gate") or {}).get("tvd_max")
    if limit is not None:
        ax.axvline(limit, color=ACCENT, ls="--", label=f"gate threshold {limit}")
        ax.legend(fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("total variation distance")
    title = "Census conformance: TVD per attribute"
    save_plot(fig, path, title)
    return title


def plot_text(f: dict[str, Any], path: Path) -> str | None:
    tables = (f.get("diversity") or {}).get("tables") or {}
    if not tables:
        return None
    fig = Figure(figsize=(14, 5), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    keys = ["distinct_1", "distinct_2", "distinct_3", "mean_pairwise_jaccard"]
    x = np.arange(len(keys))
    width = 0.8 / len(tables)
    for i, (name, t) in enumerate(tables.items()):
        ax1.bar(x + i * width, [t.get(k) or 0 for k in keys], width, label=name)
    ax1.set_xticks(x + width * (len(tables) - 1) / 2, ["distinct-1", "distinct-2", "distinct-3",
                                                         "mean MinHash\nJaccard"])  # fmt: skip
    ax1.set_ylim(0, 1.05)
    ax1.legend(fontsize=8)
    ax1.set_title(
        "lexical diversity (higher distinct-n, lower Jaccard = more diverse)", fontsize=10
    )
    groups = {name: t["words"] for name, t in tables.items()}
    groups.update({f"doc: {k}": v for k, v in (tables.get("documents") or {}).get(
        "words_by_doc_type", {}).items()})  # fmt: skip
    names = list(groups)
    p50 = np.array([groups[n]["p50"] for n in names])
    lo = p50 - np.array([groups[n]["p10"] for n in names])
    hi = np.array([groups[n]["p90"] for n in names]) - p50
    ax2.barh(names, p50, xerr=[lo, hi], color=SAMPLED, capsize=3)
    ax2.invert_yaxis()
    ax2.tick_params(axis="y", labelsize=8)
    ax2.set_xlabel("words per text: median, bars from p10 to p90")
    ax2.set_title("length per table and document type", fontsize=10)
    title = "Text diversity and length"
    save_plot(fig, path, title)
    return title


def plot_skew(f: dict[str, Any], path: Path) -> str | None:
    skew = f.get("skew") or {}
    overall, sd = skew.get("traits_overall"), skew.get("traits_sd") or {}
    cats = skew.get("fact_categories_overall") or {}
    if not overall and not cats:
        return None
    fig = Figure(figsize=(15, 7), layout="constrained")
    for i, (kind, cols) in enumerate((("traits", list(TRAITS)), ("fact_categories", list(cats)))):
        ax = fig.add_subplot(1, 2, i + 1)
        labels, grid = [], []
        for group, table in (skew.get(kind) or {}).items():
            for value, row in table.items():
                n = row.get("n", row.get("facts"))
                labels.append(f"{short(f'{group}: {value}', 28)} (n={n})")
                if kind == "traits":
                    grid.append([(row[t] - overall[t]) / (sd.get(t) or 1) for t in cols])
                else:
                    grid.append([row.get(c, 0) - cats[c] for c in cols])
        if not grid:
            ax.set_axis_off()
            continue
        limit = 1.0 if kind == "traits" else 0.3
        im = ax.imshow(np.array(grid), aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(cols)), [short(c, 16) for c in cols], rotation=30, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
        unit = "SD from the whole" if kind == "traits" else "share minus the whole's share"
        ax.set_title(
            f"{'Big Five' if kind == 'traits' else 'fact categories'}: {unit}", fontsize=10
        )
    title = "Skew by demographic group"
    save_plot(fig, path, title)
    return title


PLOTS: dict[str, Callable[[dict[str, Any], Path], str | None]] = {
    "population.png": plot_population,
    "age_sex_pyramid.png": plot_pyramid,
    "states.png": plot_states,
    "tvd.png": plot_tvd,
    "acceptance.png": plot_acceptance,
    "rounds_scores.png": plot_rounds_scores,
    "tokens.png": plot_tokens,
    "tokens_by_stage.png": plot_tokens_by_stage,
    "text.png": plot_text,
    "faithfulness.png": plot_faithfulness,
    "skew.png": plot_skew,
    "dedup.png": plot_dedup,
}


def render_plots(figures: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Draw every plot that has data into `out_dir`; returns `{file name: title}`.

    The plots are shared with the pipeline's helper process when one is open
    (`personafoundry.plot_helper`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    titles = draw_plots(PLOTS, figures, out_dir)
    return {name: title for name, title in titles.items() if title}
