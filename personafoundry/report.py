"""The dataset report: calibration, quality, diversity, faithfulness, skew, dedup and cost.

Every release carries `report.json` (the figures), `report/*.png` (matplotlib plots,
referenced from the dataset card) and `report.html` (self-contained: plots inlined as
base64 data URIs, no external reference, opens offline). Figures are computed from the
release folder's own Parquet tables through DuckDB plus the manifest's run record, so a
regenerated report equals the shipped one for the same code.

Decisions:
- `cut_release` writes the report into its temp folder after the tables and the
  validation results and before the card, manifest and rename, so the report files are
  checksummed like every other file and the card can link the plots.
- A release is immutable: `personafoundry report NAME[@VERSION]` never writes into it
  (that would break its checksums). It regenerates into a separate folder,
  `outputs/reports/<name>/<version>/` by default, with the same layout.
- Large releases are sampled, never loaded whole: text figures on MAX_TEXT_ROWS rows per
  table, MinHash similarity on MAX_SIGNATURE_ROWS rows and MAX_PAIRS pairs, the document
  plan on MAX_PLAN_PERSONAS personas (see `report_text` and `report_generation`); each
  sampled figure says so. Counts over whole tables are DuckDB SQL.
- `release diff` compares `headline()` of both versions' `report.json`; a release cut
  before reports existed gets its figures computed on the fly (no files written).
- The card shows `highlights()` (faithfulness funnel, tokens per stage) as text, so the
  main numbers read without opening the plots.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import duckdb

import personafoundry
from personafoundry.catalog import read_manifest
from personafoundry.report_generation import dedup_figures, faithfulness_figures, generation_figures
from personafoundry.report_population import population_figures, skew_figures
from personafoundry.report_text import diversity_figures
from personafoundry.schema import empty_table
from schemas import TABLES

REPORT_VERSION = 1
REPORT_DIR, REPORT_HTML, REPORT_JSON = "report", "report.html", "report.json"
CALIBRATION = "validation/calibration.json"
DEFAULT_OUT = Path("outputs/reports")
HIGHLIGHT_FUNNEL = (
    ("facts", "persona facts"),
    ("planned", "planned in a document"),
    ("verified", "verified revealed in documents"),
    ("used_in_conversations", "used in conversations"),
    ("probed", "probed"),
)


def connect_folder(folder: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with a view per table over `folder/data/<table>.parquet` (empty if absent)."""
    con = duckdb.connect(":memory:")
    for name, schema in TABLES.items():
        file = Path(folder) / "data" / f"{name}.parquet"
        if file.is_file():
            path = str(file.resolve()).replace("'", "''")
            con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{path}')")
        else:
            con.register(name, empty_table(schema))
    return con


def release_context(path: Path) -> dict[str, Any]:
    """What the report needs besides the tables, read from a published release."""
    manifest = read_manifest(path)
    return {
        "name": manifest["name"],
        "version": manifest["version"],
        "config": manifest.get("config") or {},
        "run": manifest.get("run") or {},
        "census": manifest.get("census") or {},
    }


def compute_figures(folder: Path, context: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the report from the tables under `folder/data/` and `context`."""
    folder = Path(folder)
    calibration_file = folder / CALIBRATION
    calibration = (
        json.loads(calibration_file.read_text(encoding="utf-8"))
        if calibration_file.is_file()
        else None
    )
    config = context.get("config") or {}
    con = connect_folder(folder)
    try:
        rows = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in TABLES}
        return {
            "report_version": REPORT_VERSION,
            "release": f"{context.get('name')}@{context.get('version')}",
            "generated_by": f"personafoundry {personafoundry.__version__}",
            "rows": rows,
            "population": population_figures(con, calibration, context.get("census") or {}),
            "generation": generation_figures(con, context.get("run") or {}),
            "diversity": diversity_figures(con, config),
            "faithfulness": faithfulness_figures(con, config),
            "skew": skew_figures(con),
            "dedup": dedup_figures(con, config),
        }
    finally:
        con.close()


def write_report(folder: Path, context: dict[str, Any], out: Path | None = None) -> dict[str, Any]:
    """Compute the figures of the release at `folder` and write them under `out`.

    `out` defaults to `folder` (what `cut_release` does in its temp folder). Writes
    `report.json`, `report/*.png` and `report.html`; returns a summary for the manifest
    and the card: the files, the plots with their titles, `highlights` (one-line figures
    for the card) and `timing_ms`.
    """
    from personafoundry.report_html import render_html
    from personafoundry.report_plots import render_plots

    started = time.perf_counter()
    out = Path(out or folder)
    figures = compute_figures(folder, context)
    computed = time.perf_counter()
    (out / REPORT_DIR).mkdir(parents=True, exist_ok=True)
    plots = render_plots(figures, out / REPORT_DIR)
    figures["plots"] = [{"file": f"{REPORT_DIR}/{f}", "title": t} for f, t in plots.items()]
    text = json.dumps(figures, indent=1, sort_keys=True, default=str) + "\n"
    (out / REPORT_JSON).write_text(text, encoding="utf-8")
    (out / REPORT_HTML).write_text(render_html(figures, out), encoding="utf-8")
    return {
        "html": REPORT_HTML,
        "json": REPORT_JSON,
        "plots": figures["plots"],
        "highlights": highlights(figures),
        "timing_ms": {
            "figures": round((computed - started) * 1000),
            "plots_html": round((time.perf_counter() - computed) * 1000),
        },
    }


def regenerate_report(path: Path, out_root: Path = DEFAULT_OUT) -> Path:
    """Rebuild a published release's report into `out_root/<name>/<version>/`."""
    context = release_context(path)
    out = Path(out_root) / context["name"] / context["version"]
    out.mkdir(parents=True, exist_ok=True)
    write_report(path, context, out)
    return out


def load_figures(path: Path) -> dict[str, Any]:
    """The release's `report.json`, or its figures computed on the fly (older releases)."""
    file = Path(path) / REPORT_JSON
    if file.is_file():
        return json.loads(file.read_text(encoding="utf-8"))
    return compute_figures(path, release_context(path))


def headline(figures: dict[str, Any]) -> dict[str, Any]:
    """The main figures, flat (`a.b.c` keys), that `release diff` compares."""
    out: dict[str, Any] = {}
    pop = figures.get("population") or {}
    if "max_tvd" in pop:
        out["population.max_tvd"] = pop["max_tvd"]
    gen = figures.get("generation") or {}
    for kind, s in (gen.get("stages") or {}).items():
        out[f"generation.{kind}.acceptance_rate"] = s.get("acceptance_rate")
        out[f"generation.{kind}.mean_rounds_accepted"] = s.get("mean_rounds_accepted")
    out["generation.tokens_total"] = gen.get("tokens_total")
    for stage, tokens in stage_tokens(gen).items():
        out[f"generation.{stage}.tokens"] = tokens
    out["generation.cost_usd_total"] = gen.get("cost_usd_total")
    div = figures.get("diversity") or {}
    for table, d in (div.get("tables") or {}).items():
        for key in (
            "distinct_1",
            "distinct_2",
            "distinct_3",
            "vocabulary",
            "mean_pairwise_jaccard",
        ):
            out[f"diversity.{table}.{key}"] = d.get(key)
        out[f"diversity.{table}.mean_words"] = (d.get("words") or {}).get("mean")
    conv = div.get("conversations") or {}
    if "same_first_turn_share" in conv:
        out["diversity.same_first_turn_share"] = conv["same_first_turn_share"]
    funnel = (figures.get("faithfulness") or {}).get("funnel") or {}
    for key in ("facts", "planned", "verified", "used_in_conversations", "probed"):
        out[f"faithfulness.{key}"] = funnel.get(key)
    out["faithfulness.probes"] = (figures.get("faithfulness") or {}).get("probes")
    out["skew.flags"] = len((figures.get("skew") or {}).get("flags") or [])
    for table, d in ((figures.get("dedup") or {}).get("tables") or {}).items():
        out[f"dedup.{table}.rows_removed"] = d.get("rows_removed")
    return out


def stage_tokens(generation: dict[str, Any]) -> dict[str, int]:
    """Tokens paid per stage (all roles and models), from `tokens_by_stage`."""
    out: dict[str, int] = {}
    for r in generation.get("tokens_by_stage") or []:
        out[r["stage"]] = out.get(r["stage"], 0) + r["prompt_tokens"] + r["completion_tokens"]
    return out


def highlights(figures: dict[str, Any]) -> list[str]:
    """One-line summaries for the dataset card: the faithfulness funnel and cost per stage."""
    lines = []
    funnel = (figures.get("faithfulness") or {}).get("funnel") or {}
    if funnel.get("facts"):
        parts = [
            f"{funnel[key]} {label}"
            for key, label in HIGHLIGHT_FUNNEL
            if funnel.get(key) is not None
        ]
        lines.append("Faithfulness: " + ", ".join(parts) + ".")
    gen = figures.get("generation") or {}
    if gen.get("tokens"):
        line = f"Cost: {gen['tokens_total']:,} tokens paid, ${gen['cost_usd_total']:.4f}"
        stages = stage_tokens(gen)
        if stages:
            line += "; per stage: " + ", ".join(f"{k} {v:,}" for k, v in stages.items())
        lines.append(line + ".")
    return lines


def diff_headlines(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """`{key: [before, after]}` for every headline figure present in either report."""
    ha, hb = headline(a), headline(b)
    return {k: [ha.get(k), hb.get(k)] for k in sorted({*ha, *hb})}
