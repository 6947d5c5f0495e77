"""PNG plots of the report figures, drawn with matplotlib.

Decisions:
- `matplotlib.figure.Figure` with the Agg canvas, never `pyplot`: no global figure
  state, no GUI backend, safe in threads and Prefect workers.
- Each plot's title is its figure title and the PNG's `Title` metadata (tEXt chunk), and
  `report.json` lists it, so tests and readers can check a file is the plot it claims.
- A plot whose figures are empty (no reviews, no census personas) is not drawn; the HTML
  says why. Long category labels are shortened to LABEL_CHARS characters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

DPI = 90
LABEL_CHARS = 34
TARGET, SAMPLED, ACCENT = "#9aa5b1", "#1f6feb", "#d1495b"
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


def short(label: str, limit: int = LABEL_CHARS) -> str:
    label = str(label).replace("Not Hispanic: ", "NH ").replace("$", r"\$")
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _save(fig: Figure, path: Path, title: str) -> None:
    fig.suptitle(title, fontsize=14, fontweight="bold")
    fig.savefig(path, dpi=DPI, metadata={"Title": title}, format="png")


def _bars(ax: Any, labels: list[str], target: list[float], sampled: list[float]) -> None:
    y = np.arange(len(labels))
    ax.barh(y - 0.2, target, 0.4, color=TARGET, label="census target")
    ax.barh(y + 0.2, sampled, 0.4, color=SAMPLED, label="sampled")
    ax.set_yticks(y, [short(label) for label in labels], fontsize=8)
    ax.invert_yaxis()


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
        _bars(ax, [c["category"] for c in cats], [c["target"] for c in cats],
              [c["sampled"] for c in cats])  # fmt: skip
        ax.set_title(f"{name} (n={a['n']}, TVD {a['tvd']:.3f})", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        if i == 0:
            ax.legend(fontsize=8)
    title = "Population vs census: share of each category"
    _save(fig, path, title)
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
    _save(fig, path, title)
    return title


def plot_states(f: dict[str, Any], path: Path) -> str | None:
    states = f["population"].get("states") or []
    if not states:
        return None
    fig = Figure(figsize=(8, 13), layout="constrained")
    ax = fig.add_subplot()
    _bars(ax, [s["category"] for s in states], [s["target"] for s in states],
          [s["sampled"] for s in states])  # fmt: skip
    ax.set_xlabel("share of census personas")
    ax.legend(fontsize=8, loc="lower right")
    title = "States ranked by census share: sampled vs PEP 2023"
    _save(fig, path, title)
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
    _save(fig, path, title)
    return title


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
    _save(fig, path, title)
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
    _save(fig, path, title)
    return title


def plot_tokens(f: dict[str, Any], path: Path) -> str | None:
    rows = f["generation"].get("tokens") or []
    if not rows:
        return None
    fig = Figure(figsize=(10, 2.5 + 0.5 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    labels = [f"{r['role']} / {r['model']}" for r in rows]
    prompt = np.array([r["prompt_tokens"] for r in rows])
    ax.barh(labels, prompt, color=TARGET, label="prompt tokens")
    ax.barh(labels, [r["completion_tokens"] for r in rows], left=prompt, color=SAMPLED,
            label="completion tokens")  # fmt: skip
    for i, r in enumerate(rows):
        ax.text(r["total_tokens"], i, f"  \\${r['cost_usd']:.4f}", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_xlabel("tokens paid (response-cache ledger)")
    title = "Tokens and cost per role and model"
    _save(fig, path, title)
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
    _save(fig, path, title)
    return title


def plot_faithfulness(f: dict[str, Any], path: Path) -> str | None:
    faith = f.get("faithfulness") or {}
    funnel = faith.get("funnel") or {}
    if not funnel.get("facts"):
        return None
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    steps = [("facts", "facts in ledgers"), ("planned", "planned in a document"),
             ("in_accepted_documents", "in an accepted document"),
             ("verified", "verified revealed"), ("probed", "probed")]  # fmt: skip
    steps = [(k, label) for k, label in steps if funnel.get(k) is not None]
    ax1.barh([label for _, label in steps], [funnel[k] for k, _ in steps], color=SAMPLED)
    for i, (k, _) in enumerate(steps):
        ax1.text(funnel[k], i, f" {funnel[k]}", va="center", fontsize=9)
    ax1.invert_yaxis()
    ax1.set_title("persona facts through documents and probes", fontsize=10)
    kinds = faith.get("probes_by_kind") or {}
    ax2.bar(list(kinds), list(kinds.values()), color=TARGET)
    ax2.set_title("probes by kind", fontsize=10)
    title = "Faithfulness: facts planned, revealed, verified, probed"
    _save(fig, path, title)
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
    _save(fig, path, title)
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
    _save(fig, path, title)
    return title


PLOTS: dict[str, Callable[[dict[str, Any], Path], str | None]] = {
    "population.png": plot_population,
    "age_sex_pyramid.png": plot_pyramid,
    "states.png": plot_states,
    "tvd.png": plot_tvd,
    "acceptance.png": plot_acceptance,
    "rounds_scores.png": plot_rounds_scores,
    "tokens.png": plot_tokens,
    "text.png": plot_text,
    "faithfulness.png": plot_faithfulness,
    "skew.png": plot_skew,
    "dedup.png": plot_dedup,
}


def render_plots(figures: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Draw every plot that has data into `out_dir`; returns `{file name: title}`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {}
    for name, draw in PLOTS.items():
        title = draw(figures, out_dir / name)
        if title:
            done[name] = title
    return done
