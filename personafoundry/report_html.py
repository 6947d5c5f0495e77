"""`report.html`: one self-contained page with every figure and plot of the report.

Decisions:
- Plots are inlined as base64 `data:image/png` URIs and the style sheet is inline, so the
  page opens offline and carries no external reference (no link, script, font or
  remote image). Text from the data (critic feedback, first turns) is HTML-escaped and
  URL schemes in it are defused (`http&#58;`), so not even a copied URL reads as a link.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

SCHEME_RX = re.compile(r"(?i)\b(https?|ftp|file|data|javascript):")
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;
background:#f6f8fa;color:#1f2328}
main{max-width:1150px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:28px;margin:8px 0 4px}h2{font-size:21px;border-bottom:2px solid #d0d7de;
padding-bottom:4px;margin-top:36px}h3{font-size:16px;margin:20px 0 6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #d0d7de;margin:8px 0}
.note{color:#57606a;font-size:13px}.flag{color:#b42318;font-weight:600}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.kpi{background:#eef4ff;border-radius:8px;padding:10px 16px;min-width:150px}
.kpi b{display:block;font-size:22px;color:#0b57d0}
"""


def esc(value: Any) -> str:
    return SCHEME_RX.sub(r"\1&#58;", html.escape("" if value is None else str(value)))


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(value)


def table(head: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return '<p class="note">(none)</p>'
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{fmt(v)}</td>' if isinstance(v, (int, float)) else f"<td>{fmt(v)}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def image(figures: dict[str, Any], out: Path, name: str) -> str:
    for plot in figures.get("plots") or []:
        if plot["file"].endswith("/" + name):
            data = base64.b64encode((out / plot["file"]).read_bytes()).decode("ascii")
            return f'<img alt="{esc(plot["title"])}" src="data:image/png;base64,{data}">'
    return f'<p class="note">plot {esc(name)} not drawn: no data for it in this release.</p>'


def _population(f: dict[str, Any], out: Path) -> str:
    pop = f["population"]
    if "skipped" in pop:
        return f'<p class="note">{esc(pop["skipped"])}</p>'
    gate = pop.get("gate") or {}
    rows = [[k, a["universe"], a["n"], a["tvd"]] for k, a in pop["attributes"].items()]
    return (
        f"<p>{pop['census_personas']} census personas ({pop['seed_personas_excluded']} seed "
        f"personas not compared). Targets: {esc(pop['target_source'])}; conditions: "
        f"{esc(pop['conditions'] or 'none (full US population)')}. Census: {esc(pop['vintage'])}."
        f" Gate: <b>{esc(gate.get('status'))}</b> ({esc(gate.get('note'))}), TVD threshold "
        f"{esc(gate.get('tvd_max'))}.</p>"
        + table(["attribute", "universe", "n", "TVD"], rows)
        + "".join(image(f, out, n) for n in ("tvd.png", "population.png", "age_sex_pyramid.png"))
        + f'<p class="note">Pyramid reference: {esc((pop.get("pyramid") or {}).get("reference"))}'
        "</p>" + image(f, out, "states.png")
    )


def _generation(f: dict[str, Any], out: Path) -> str:
    g = f["generation"]
    stages = [
        [k, s["items"], s["accepted"], s["acceptance_rate"], s["mean_rounds_accepted"]]
        for k, s in g["stages"].items()
    ]
    experts = [
        [k, e["reviews"], e["pass_rate"], e["mean_score"], e["failed_attempts"]]
        for k, e in g["experts"].items()
    ]
    rejections = [
        [r["stage"], r["expert"], r["count"], r["example"], r["example_item_id"]]
        for r in g["rejections"]
    ]
    tokens = [
        [r["role"], r["model"], r["requests"], r["prompt_tokens"], r["completion_tokens"],
         r["cost_usd"]]
        for r in g["tokens"]
    ]  # fmt: skip
    by_stage = [
        [r["stage"], r["role_model"], r["requests"], r["cache_hits"], r["prompt_tokens"],
         r["completion_tokens"], r["cost_usd"]]
        for r in g["tokens_by_stage"]
    ]  # fmt: skip
    note = g.get("tokens_by_stage_note")
    return (
        table(["stage", "items reviewed", "accepted", "acceptance", "mean rounds"], stages)
        + table(["stage/expert", "verdicts", "pass rate", "mean score", "failed attempts"], experts)
        + image(f, out, "acceptance.png")
        + image(f, out, "rounds_scores.png")
        + "<h3>Top rejection reasons (one example each)</h3>"
        + table(["stage", "expert", "rejections", "example feedback", "example item"], rejections)
        + "<h3>Tokens and cost</h3>"
        + f"<p>{g['tokens_total']:,} tokens paid, ${g['cost_usd_total']:.4f}.</p>"
        + table(["role", "model", "requests", "prompt", "completion", "cost USD"], tokens)
        + image(f, out, "tokens.png")
        + "<h3>Tokens and cost per stage</h3>"
        + (
            f'<p class="note">{esc(note)}</p>'
            if note
            else table(
                ["stage", "role/model", "requests", "cache hits", "prompt", "completion", "USD"],
                by_stage,
            )
            + image(f, out, "tokens_by_stage.png")
        )
    )


def _diversity(f: dict[str, Any], out: Path) -> str:
    d = f["diversity"]
    rows = [
        [k, t["rows"], t["sampled_rows"], t["distinct_1"], t["distinct_2"], t["distinct_3"],
         t["vocabulary"], t["mean_pairwise_jaccard"],
         f"{t['pairs']}{' (sampled)' if t['pairs_sampled'] else ''}", t["words"].get("mean")]
        for k, t in d["tables"].items()
    ]  # fmt: skip
    conv = d.get("conversations") or {}
    first = ""
    if conv.get("conversations"):
        top = conv["most_common_first_turn"]
        first = (
            f"<p>{conv['same_first_turn_share']:.1%} of {conv['conversations']} conversations "
            f"open with a first turn another conversation also opens with; most common "
            f"({top['count']}x): <q>{esc(top['text'])}</q>. Mean turns: "
            f"{conv['turns'].get('mean')}.</p>"
        )
    return (
        table(
            [
                "table",
                "rows",
                "rows read",
                "distinct-1",
                "distinct-2",
                "distinct-3",
                "vocabulary",
                "mean MinHash Jaccard",
                "pairs",
                "mean words",
            ],
            rows,
        )
        + first
        + f'<p class="note">Embedding diversity: {esc(d.get("embedding"))}.</p>'
        + image(f, out, "text.png")
    )


FUNNEL_LABELS = {  # in the order the page lists them
    "personas": "personas examined",
    "sampled": "personas sampled (not all)",
    "facts": "facts in their ledgers",
    "planned": "facts planned in a document",
    "in_accepted_documents": "planned facts in an accepted document",
    "verified_of_planned": "planned facts verified revealed",
    "verified": "facts verified revealed (revealed_fact_ids)",
    "used_in_conversations": "facts used in a conversation (used_fact_ids)",
    "probed": "facts with a direct or temporal probe",
    "plan_reproduced": "plan recomputed matches the documents",
}


def _faithfulness(f: dict[str, Any], out: Path) -> str:
    fa = f["faithfulness"]
    funnel = fa.get("funnel") or {}
    keys = [k for k in FUNNEL_LABELS if k in funnel] + [k for k in funnel if k not in FUNNEL_LABELS]
    rows = [[FUNNEL_LABELS.get(k, k), funnel[k]] for k in keys if k != "plan_note"]
    note = funnel.get("plan_note")
    return (
        table(["measure", "value"], rows)
        + (f'<p class="note">{esc(note)}</p>' if note else "")
        + table(["probe kind", "probes"], [[k, v] for k, v in fa["probes_by_kind"].items()])
        + image(f, out, "faithfulness.png")
    )


def _skew(f: dict[str, Any], out: Path) -> str:
    s = f["skew"]
    flags = [
        [x["group"], x["value"], x["n"], x["measure"], x["group_value"], x["overall"],
         x["difference"]]
        for x in s["flags"]
    ]  # fmt: skip
    head = (
        f'<p class="flag">{len(flags)} flagged group(s).</p>'
        if flags
        else "<p>No group flagged.</p>"
    )
    return (
        f"<p>Rule: {esc(s['rule'])}.</p>"
        + head
        + (
            table(["group", "value", "n", "measure", "group", "whole", "difference"], flags)
            if flags
            else ""
        )
        + image(f, out, "skew.png")
    )


def _dedup(f: dict[str, Any], out: Path) -> str:
    d = f["dedup"]
    rows, examples = [], []
    for t, x in d["tables"].items():
        rows.append([t, x["clusters"], x["rows_removed"], x["mean_similarity"]])
        examples += [
            [t, e["item_id"], e["kept_id"], e["similarity"], e["kept_text"]] for e in x["examples"]
        ]
    if not rows:
        return "<p>No near-duplicates were removed.</p>"
    return (
        table(["table", "clusters", "rows removed", "mean similarity"], rows)
        + table(["table", "removed", "kept", "similarity", "kept text"], examples)
        + f'<p class="note">{esc(d["note"])}.</p>'
        + image(f, out, "dedup.png")
    )


def _kpis(f: dict[str, Any]) -> str:
    g, pop = f["generation"], f["population"]
    items = [
        ("personas", f["rows"].get("personas")),
        ("conversations", f["rows"].get("conversations")),
        ("documents", f["rows"].get("documents")),
        ("probes", f["rows"].get("probes")),
        ("max census TVD", pop.get("max_tvd", "n/a")),
        ("tokens paid", f"{g['tokens_total']:,}"),
        ("cost USD", f"{g['cost_usd_total']:.4f}"),
    ]
    return (
        '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{fmt(v)}</b>{esc(k)}</div>' for k, v in items)
        + "</div>"
    )


def render_html(figures: dict[str, Any], out: Path) -> str:
    """The page; `out` is the folder holding `report/*.png` (inlined, not linked)."""
    sections = [
        ("Population vs census", _population),
        ("Generation: critics, rounds, cost", _generation),
        ("Diversity", _diversity),
        ("Faithfulness", _faithfulness),
        ("Skew", _skew),
        ("Dedup", _dedup),
    ]
    body = "".join(f"<h2>{esc(t)}</h2>{fn(figures, out)}" for t, fn in sections)
    title = f"Dataset report: {figures['release']}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body><main><h1>{esc(title)}</h1>"
        f'<p class="note">{esc(figures["generated_by"])}; figures in report.json.</p>'
        f"{_kpis(figures)}{body}</main></body></html>\n"
    )
