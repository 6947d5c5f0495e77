"""Report figures about how the release was made: critics, rounds, tokens, facts, dedup.

Decisions:
- Acceptance per stage counts items that reached the critic (distinct `reviews.item_id`
  per `item_kind`); an item is accepted when any of its rows says `accepted`, and its
  rounds are its highest `round`. Pass rate per expert is over every verdict of every
  round, as in the dataset card.
- A rejection reason is a failed verdict (`passed = false`) grouped by stage and expert;
  its example is the verdict with the smallest `review_id` (stable between regenerations).
- Tokens and cost per role and model come from the run's ledger in the manifest
  (`run.tokens`, paid totals over all resumes); per stage from `run.stage_usage` when the
  run recorded it, otherwise the report says it is unavailable.
- Facts planned vs revealed vs verified: the document planner is deterministic per
  persona (its fact assignment uses only the persona's own facts and a seed derived from
  its id), so the plan is recomputed from the release's personas and the recorded
  `documents` config, for at most MAX_PLAN_PERSONAS personas (a hash-ordered sample
  beyond that), planned PLAN_CHUNK personas at a time (the planner's distractor pool
  grows quadratically with the personas planned together). `coverage_report`
  (`documents.py`) then counts, per fact, the documents planned, accepted and verified.
  If accepted documents are missing from the recomputed plan (config or catalog changed
  since the run) the figures say `plan_reproduced: false`.
- Facts used in conversations (`used_in_conversations`): distinct facts of the examined
  personas named in any conversation's `used_fact_ids` (the generator's claim, which the
  `fact_use` critic checked). A separate line, not a step after `verified`: conversations
  are not planned per fact, and a fact may reach a conversation without any document.
- Dedup examples show ids and similarity; the removed row's text is not shipped (only its
  id is, in `duplicates`), so the kept row's text stands for the pair.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from personafoundry.config import DedupConfig
from schemas import TABLES

MAX_PLAN_PERSONAS = 500
PLAN_CHUNK = 100
TOP_REJECTIONS = 10
DEDUP_EXAMPLES = 3
EXCERPT = 240


def excerpt(text: str | None, limit: int = EXCERPT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def generation_figures(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> dict[str, Any]:
    """Acceptance per stage and expert, rounds, scores, rejections, tokens and cost."""
    items = (
        "WITH items AS (SELECT item_kind, item_id, max(round) AS rounds, "
        "bool_or(accepted) AS accepted FROM reviews GROUP BY ALL) "
    )
    stages = {}
    for kind, n, acc, mean_rounds in con.execute(
        items + "SELECT item_kind, count(*), count(*) FILTER (accepted), "
        "avg(rounds) FILTER (accepted) FROM items GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        stages[kind] = {
            "items": n,
            "accepted": acc,
            "acceptance_rate": round(acc / n, 4) if n else None,
            "mean_rounds_accepted": None if mean_rounds is None else round(mean_rounds, 3),
            "rounds_accepted": {},
        }
    for kind, rounds, n in con.execute(
        items + "SELECT item_kind, rounds, count(*) FROM items WHERE accepted "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        stages[kind]["rounds_accepted"][str(rounds)] = n
    experts = {}
    for kind, expert, n, rate, score, failed in con.execute(
        "SELECT item_kind, expert, count(*), avg(passed::INT), avg(score), "
        "count(*) FILTER (score IS NULL) FROM reviews GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        experts[f"{kind}/{expert}"] = {
            "reviews": n,
            "pass_rate": round(rate, 4),
            "mean_score": None if score is None else round(score, 3),
            "failed_attempts": failed,
        }
    scores: dict[str, dict[str, int]] = {}
    for kind, expert, score, n in con.execute(
        "SELECT item_kind, expert, score, count(*) FROM reviews WHERE score IS NOT NULL "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        scores.setdefault(f"{kind}/{expert}", {})[f"{score:g}"] = n
    rejections = [
        {
            "stage": kind,
            "expert": expert,
            "count": n,
            "example_item_id": item,
            "example": excerpt(text),
        }
        for kind, expert, n, item, text in con.execute(
            "SELECT item_kind, expert, count(*), arg_min(item_id, review_id), "
            "arg_min(coalesce(nullif(feedback, ''), error), review_id) FROM reviews "
            f"WHERE NOT passed GROUP BY ALL ORDER BY 3 DESC, 1, 2 LIMIT {TOP_REJECTIONS}"
        ).fetchall()
    ]
    return {
        "stages": stages,
        "experts": experts,
        "scores": scores,
        "rejections": rejections,
        **token_figures(run),
    }


def token_figures(run: dict[str, Any]) -> dict[str, Any]:
    """Paid tokens and cost per role/model (the ledger) and per stage when recorded."""
    ledger = run.get("tokens")
    rows = []
    for r in ledger if isinstance(ledger, list) else []:
        prompt, completion = int(r.get("prompt_tokens") or 0), int(r.get("completion_tokens") or 0)
        rows.append(
            {
                "role": r.get("role"),
                "model": r.get("model"),
                "requests": int(r.get("requests") or 0),
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "cost_usd": round(float(r.get("cost_usd") or 0.0), 6),
            }
        )
    by_stage = []
    for stage, book in sorted((run.get("stage_usage") or {}).items()):
        for key, c in sorted((book or {}).items()):
            by_stage.append(
                {
                    "stage": stage,
                    "role_model": key,
                    "requests": int(c.get("requests", 0)),
                    "cache_hits": int(c.get("cache_hits", 0)),
                    "prompt_tokens": int(c.get("prompt_tokens", 0)),
                    "completion_tokens": int(c.get("completion_tokens", 0)),
                    "cost_usd": round(float(c.get("cost_usd", 0.0)), 6),
                }
            )
    return {
        "tokens": rows,
        "tokens_total": sum(r["total_tokens"] for r in rows),
        "cost_usd_total": round(sum(r["cost_usd"] for r in rows), 6),
        "tokens_by_stage": by_stage,
        "tokens_by_stage_note": None
        if by_stage
        else "per-stage usage was not recorded with this run (manifest run.stage_usage)",
    }


def faithfulness_figures(con: duckdb.DuckDBPyConnection, config: dict[str, Any]) -> dict[str, Any]:
    """Facts planned vs in accepted documents vs verified vs probed; probes by kind.

    Also the facts conversations use (`used_in_conversations`), a line of its own.
    """
    kinds = dict(
        con.execute("SELECT kind, count(*) FROM probes GROUP BY ALL ORDER BY ALL").fetchall()
    )
    out: dict[str, Any] = {"probes_by_kind": kinds, "probes": sum(kinds.values())}
    total = con.execute("SELECT count(*) FROM personas").fetchall()[0][0]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _plan_personas AS SELECT persona_id FROM personas "
        f"ORDER BY hash(persona_id), persona_id LIMIT {MAX_PLAN_PERSONAS}"
    )
    personas = con.sql(
        "SELECT persona_id, name, facts FROM personas "
        "WHERE persona_id IN (SELECT persona_id FROM _plan_personas) ORDER BY persona_id"
    ).to_arrow_table()
    docs = con.sql(
        "SELECT document_id, persona_id, revealed_fact_ids, coalesce(is_distractor, false) AS d "
        "FROM documents WHERE persona_id IN (SELECT persona_id FROM _plan_personas)"
    ).to_arrow_table()
    facts = con.execute(
        "SELECT count(*) FROM _plan_personas JOIN (SELECT persona_id, unnest(facts) FROM personas)"
        " USING (persona_id)"
    ).fetchall()[0][0]
    probed = con.execute(
        "SELECT count(DISTINCT (persona_id, fact_id)) FROM probes WHERE fact_id IS NOT NULL "
        "AND kind <> 'negative' AND persona_id IN (SELECT persona_id FROM _plan_personas)"
    ).fetchall()[0][0]
    verified = con.execute(
        "SELECT count(DISTINCT (persona_id, f)) FROM documents, unnest(revealed_fact_ids) AS u(f)"
        " WHERE persona_id IN (SELECT persona_id FROM _plan_personas)"
    ).fetchall()[0][0]
    used = con.execute(
        "SELECT count(DISTINCT (persona_id, f.fact_id)) FROM (SELECT persona_id, unnest(facts) "
        "AS f FROM personas WHERE persona_id IN (SELECT persona_id FROM _plan_personas)) "
        "WHERE f.fact_id IN (SELECT unnest(used_fact_ids) FROM conversations)"
    ).fetchall()[0][0]
    con.execute("DROP TABLE _plan_personas")
    funnel = {
        "personas": personas.num_rows,
        "sampled": personas.num_rows < total,
        "facts": facts,
        "verified": verified,
        "used_in_conversations": used,
        "probed": probed,
    }
    funnel.update(_planned(personas, docs, config))
    out["funnel"] = funnel
    return out


def _planned(personas: pa.Table, docs: pa.Table, config: dict[str, Any]) -> dict[str, Any]:
    from personafoundry.config import DocumentsConfig
    from personafoundry.doc_plan import plan_documents
    from personafoundry.documents import coverage_report

    try:
        cfg = DocumentsConfig.model_validate(config.get("documents") or {})
        seed = int(config.get("seed", 0))
        # A persona's fact plan ignores the other personas, whose facts only feed its
        # distractors: planning in chunks keeps that quadratic pool small.
        plan = pa.concat_tables(
            [
                plan_documents(personas.slice(i, PLAN_CHUNK), cfg, rng_seed=seed).table
                for i in range(0, max(personas.num_rows, 1), PLAN_CHUNK)
            ]
        )
    except Exception as err:  # noqa: BLE001 - a report must not stop a release
        return {"planned": None, "plan_note": f"plan not recomputed: {err}"}
    plan = plan.filter(pc.equal(plan["role"], "facts"))
    planned_ids = set(plan.column("document_id").to_pylist())
    own = docs.filter(pc.invert(docs["d"]))
    missing = sum(d not in planned_ids for d in own.column("document_id").to_pylist())
    cov = coverage_report(plan, docs).to_pylist()
    return {
        "planned": sum(r["planned"] > 0 for r in cov),
        "in_accepted_documents": sum(r["accepted"] > 0 for r in cov),
        "verified_of_planned": sum(r["verified"] > 0 for r in cov),
        "plan_reproduced": missing == 0,
        "plan_note": None
        if missing == 0
        else f"{missing} accepted documents are not in the recomputed plan (config or catalog "
        "changed since the run, or documents not made by the planner)",
    }


def dedup_figures(con: duckdb.DuckDBPyConnection, config: dict[str, Any]) -> dict[str, Any]:
    """Clusters and rows removed per table, with the most similar example pairs."""
    from personafoundry.dedup import table_text

    fields = DedupConfig.model_validate(config.get("dedup") or {}).text_fields
    out: dict[str, Any] = {"tables": {}}
    rows = con.execute(
        'SELECT "table", count(DISTINCT cluster_id), count(*), avg(similarity) FROM duplicates '
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    for table, clusters, removed, sim in rows:
        examples = con.execute(
            'SELECT item_id, kept_id, cluster_id, similarity FROM duplicates WHERE "table" = ? '
            f"ORDER BY similarity DESC, item_id LIMIT {DEDUP_EXAMPLES}",
            [table],
        ).fetchall()
        texts: dict[str, str] = {}
        if table in TABLES and table in fields:
            pk = TABLES[table].primary_key
            kept = [e[1] for e in examples]
            rel = con.sql(f'SELECT * FROM "{table}" WHERE "{pk}" IN ?', params=[kept])
            rel = rel.to_arrow_table()
            if rel.num_rows:
                joined = table_text(rel, fields[table]).to_pylist()
                texts = dict(zip(rel.column(pk).to_pylist(), joined))
        out["tables"][table] = {
            "clusters": clusters,
            "rows_removed": removed,
            "mean_similarity": round(sim, 4),
            "examples": [
                {
                    "item_id": item,
                    "kept_id": kept,
                    "cluster_id": cluster,
                    "similarity": round(s, 4),
                    "kept_text": excerpt(texts.get(kept)) if kept in texts else None,
                }
                for item, kept, cluster, s in examples
            ],
        }
    out["note"] = "removed rows are not shipped; examples show the kept row's text"
    return out
