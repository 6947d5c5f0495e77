"""The dataset card (`README.md` of a release) and the metrics it and the manifest report.

Decisions:
- Hugging Face YAML front matter lists one `config_name` per table with its Parquet
  file as the `train` split, so the hub viewer and `datasets.load_dataset("parquet",
  data_files=...)` read the release without a loading script.
- The YAML is written by hand (every string through `json.dumps`, which is valid YAML)
  so the card needs no YAML library and round-trips exactly.
- Column tables come from `schemas/` (`column_table_markdown`), never from the data,
  so the card documents the contract the data was validated against.
- The dataset report's plots are linked with relative paths (`report/<plot>.png`), which
  the hub and any Markdown viewer resolve inside the release folder.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

from personafoundry.schema import column_table_markdown
from schemas import TABLES

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
)


def release_metrics(tables: dict[str, pa.Table], census: dict[str, Any]) -> dict[str, Any]:
    """Numbers a release diff compares: rows, critic pass rates, census TVD."""
    metrics: dict[str, Any] = {"rows": {t: tbl.num_rows for t, tbl in tables.items()}}
    if "reviews" in tables and tables["reviews"].num_rows:
        con = duckdb.connect(":memory:")
        con.register("reviews", tables["reviews"])
        row = con.execute(
            "SELECT count(*), avg(passed::INT), avg(score), count(*) FILTER (score IS NULL) "
            "FROM reviews"
        ).fetchone()
        experts = con.execute(
            "SELECT expert, round(avg(passed::INT), 4), round(avg(score), 3), count(*) "
            "FROM reviews GROUP BY expert ORDER BY expert"
        ).fetchall()
        con.close()
        metrics["critic"] = {
            "reviews": row[0],
            "pass_rate": round(row[1], 4),
            "mean_score": None if row[2] is None else round(row[2], 3),
            "failed_attempts": row[3],
            "by_expert": {
                e: {"pass_rate": p, "mean_score": s, "reviews": n} for e, p, s, n in experts
            },
        }
    tvds = census.get("tvd") or {}
    if tvds:
        metrics["census_max_tvd"] = round(max(tvds.values()), 4)
    return metrics


def _size_category(rows: int) -> str:
    for limit, label in SIZE_CATEGORIES:
        if rows < limit:
            return label
    return "n>10M"


def front_matter(manifest: dict[str, Any]) -> str:
    """Hugging Face card metadata: pretty name, tags, size and one config per table."""
    tables = manifest["tables"]
    largest = max((m["rows"] for m in tables.values()), default=0)
    lines = [
        "---",
        f"pretty_name: {json.dumps(manifest['name'] + ' ' + manifest['version'])}",
        "tags:",
        "- synthetic",
        "- personas",
        "size_categories:",
        f"- {json.dumps(_size_category(largest))}",
        "configs:",
    ]
    for i, (table, meta) in enumerate(tables.items()):
        lines += [f"- config_name: {json.dumps(table)}"]
        lines += ["  default: true"] if i == 0 else []
        lines += ["  data_files:", "  - split: train", f"    path: {json.dumps(meta['path'])}"]
    lines.append("---")
    return "\n".join(lines) + "\n"


def _usage(manifest: dict[str, Any]) -> str:
    first = next(iter(manifest["tables"]), "personas")
    spec = f"{manifest['name']}@{manifest['version']}"
    return f"""## Use

DuckDB (views named after the tables; run from this folder):

```sql
-- duckdb -init views.sql
SELECT count(*) FROM {first};
```

or `personafoundry release query {spec} "SELECT count(*) FROM {first}"`.

pandas / pyarrow: `pandas.read_parquet("data/{first}.parquet")`.

Hugging Face `datasets` (one config per table, declared in this card):

```python
from datasets import load_dataset
{first} = load_dataset("path/to/this/folder", "{first}", split="train")
# or a single file:
{first} = load_dataset("parquet", data_files="data/{first}.parquet", split="train")
```

`personafoundry release verify {spec}` re-hashes every file against `manifest.json`
(or run `sha256sum -c SHA256SUMS` here).
"""


def _census_section(census: dict[str, Any]) -> str:
    if not census:
        return "No personas in this release, so no census-conformance gate."
    lines = [
        f"Gate: **{census.get('status')}** ({census.get('note')}); "
        + f"{census.get('census_rows', 0)} census personas, TVD threshold {census.get('tvd_max')}."
    ]
    for key in ("vintage", "tables", "sources"):
        if key in census:
            lines.append(f"- {key}: {json.dumps(census[key], default=str)}")
    tvds = census.get("tvd") or {}
    if tvds:
        lines += ["", "| distribution | TVD |", "|---|---|"]
        lines += [f"| `{k}` | {v:.4f} |" for k, v in sorted(tvds.items())]
    return "\n".join(lines)


def _critic_section(metrics: dict[str, Any]) -> str:
    critic = metrics.get("critic")
    if not critic:
        return "No critic reviews in this release."
    summary = (
        f"{critic['reviews']} reviews, pass rate {critic['pass_rate']:.1%}, mean score "
        f"{critic['mean_score']}, {critic['failed_attempts']} failed attempts."
    )
    lines = [summary, "", "| expert | reviews | pass rate | mean score |", "|---|---|---|---|"]
    for expert, m in critic["by_expert"].items():
        lines.append(f"| {expert} | {m['reviews']} | {m['pass_rate']:.1%} | {m['mean_score']} |")
    return "\n".join(lines)


def _report_section(manifest: dict[str, Any]) -> str:
    report = manifest.get("report")
    if not report:
        return "No dataset report in this release."
    spec = f"{manifest['name']}@{manifest['version']}"
    lines = [
        (
            "Population vs census, critic acceptance, diversity, faithfulness, skew, dedup and "
            f"cost: every figure in `{report['json']}`, everything on one page that opens "
            f"offline in `{report['html']}` (`personafoundry report {spec} --open` regenerates "
            "it outside this immutable folder)."
        ),
        "",
    ]
    lines += [f"- {h}" for h in report.get("highlights", [])] + [""]
    lines += [f"![{p['title']}]({p['file']})\n" for p in report.get("plots", [])]
    return "\n".join(lines).rstrip()


def _provenance(manifest: dict[str, Any]) -> str:
    run = json.dumps(manifest.get("run") or {}, indent=1, sort_keys=True, default=str)
    return (
        f"- created: {manifest['created_at']} by personafoundry {manifest['tool']['version']}\n"
        f"- parent version: {manifest.get('parent_version') or 'none'}\n"
        f"- schema version: {manifest['schema_version']}\n"
        f"- config SHA-256: `{manifest['config_sha256']}` (full config in `manifest.json`)\n\n"
        f"Models, endpoints (no secrets) and token totals:\n\n```json\n{run}\n```\n"
    )


def render_card(manifest: dict[str, Any]) -> str:
    """The release's README.md: front matter, summary, usage, columns, quality, provenance."""
    rows = "\n".join(
        f"| `{t}` | {m['rows']:,} | {TABLES[t].description} |"
        for t, m in manifest["tables"].items()
    )
    columns = "\n\n".join(
        f"### `{t}`\n\n{TABLES[t].description}\n\n{column_table_markdown(TABLES[t])}"
        for t in manifest["tables"]
    )
    validation = manifest["validation"]
    verdict = "passed" if validation["passed"] else "FAILED"
    return f"""{front_matter(manifest)}
# {manifest["name"]} {manifest["version"]}

Synthetic personas with census-calibrated demographics, conversations between them,
their private documents and probe questions, generated by LLM generator-critic loops
with personafoundry. Every row is synthetic; no real person is described.

| table | rows | contents |
|---|---|---|
{rows}

{_usage(manifest)}
## Columns

{columns}

## Validation

All contracts {verdict}: {validation.get("checks", 0)} checks over
{validation.get("tables", 0)} tables (Great Expectations suites, nested-column rules,
foreign keys). Details: `validation/summary.md`, `validation/results.json`.

## Census calibration

{_census_section(manifest.get("census") or {})}

## Critic

{_critic_section(manifest.get("metrics") or {})}

## Report

{_report_section(manifest)}

## Provenance

{_provenance(manifest)}"""
