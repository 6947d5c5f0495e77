"""The look shared by every report plot: colours, resolution, labels and the titled save.

Decisions:
- `matplotlib.figure.Figure` with the Agg canvas, never `pyplot`: no global figure
  state, no GUI backend, safe in threads and Prefect workers.
- Each plot's title is its figure title and the PNG's `Title` metadata (tEXt chunk), and
  `report.json` lists it, so tests and readers can check a file is the plot it claims.
- Long category labels are shortened to LABEL_CHARS characters; `$` is escaped because
  matplotlib would otherwise start mathtext at an income label ("$50,000").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

DPI = 90
LABEL_CHARS = 34
TARGET, SAMPLED, ACCENT = "#9aa5b1", "#1f6feb", "#d1495b"
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


def short(label: str, limit: int = LABEL_CHARS) -> str:
    """A tick label: abbreviated, at most `limit` characters, `$` escaped."""
    label = str(label).replace("Not Hispanic: ", "NH ").replace("$", r"\$")
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def save_plot(fig: Figure, path: Path, title: str) -> None:
    """Write `fig` as PNG with `title` as its heading and its `Title` metadata."""
    fig.suptitle(title, fontsize=14, fontweight="bold")
    fig.savefig(path, dpi=DPI, metadata={"Title": title}, format="png")


def paired_bars(ax: Any, labels: list[str], target: list[float], sampled: list[float]) -> None:
    """Horizontal census-target vs sampled bars, one pair per label, first label on top."""
    y = np.arange(len(labels))
    ax.barh(y - 0.2, target, 0.4, color=TARGET, label="census target")
    ax.barh(y + 0.2, sampled, 0.4, color=SAMPLED, label="sampled")
    ax.set_yticks(y, [short(label) for label in labels], fontsize=8)
    ax.invert_yaxis()
