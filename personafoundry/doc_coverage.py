"""The run's document coverage report, combined from the per-shard reports of `documents.py`.

Each documents shard returns `coverage` (per persona fact: documents planned to reveal it,
accepted, verified) and `by_type` (per document type: planned, accepted, rate) for its own
plan rows. A persona's documents may fall in two shards, so the run's report adds the
counts per key instead of concatenating rows, and recomputes the rates from the sums.

Decisions:
- A fact counts as planned / revealed / verified when at least one document planned,
  accepted, or verified (the coverage expert found it in the text) it. `facts_total` is
  every fact of the personas, so facts no document was planned for show up too.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

COUNTS = ("planned", "accepted", "verified")
COVERAGE_SCHEMA = pa.schema(
    [("persona_id", pa.string()), ("fact_id", pa.string())] + [(c, pa.int64()) for c in COUNTS]
)
BY_TYPE_SCHEMA = pa.schema(
    [("doc_type", pa.string()), ("planned", pa.int64()), ("accepted", pa.int64()),
     ("rate", pa.float64())]
)  # fmt: skip


def combine_coverage(parts: pa.Table | None) -> pa.Table:
    """Per (persona_id, fact_id): planned, accepted and verified summed over shards."""
    if parts is None or parts.num_rows == 0:
        return COVERAGE_SCHEMA.empty_table()
    summed = parts.group_by(["persona_id", "fact_id"]).aggregate([(c, "sum") for c in COUNTS])
    summed = summed.rename_columns([f.removesuffix("_sum") for f in summed.column_names])
    summed = summed.sort_by([("persona_id", "ascending"), ("fact_id", "ascending")])
    return summed.select(COVERAGE_SCHEMA.names).cast(COVERAGE_SCHEMA)


def combine_by_type(parts: pa.Table | None) -> pa.Table:
    """Per document type: planned and accepted summed over shards, and the acceptance rate."""
    if parts is None or parts.num_rows == 0:
        return BY_TYPE_SCHEMA.empty_table()
    summed = parts.group_by("doc_type").aggregate([("planned", "sum"), ("accepted", "sum")])
    summed = summed.sort_by("doc_type")
    planned = pc.cast(summed["planned_sum"], pa.float64())
    rate = pc.if_else(pc.equal(planned, 0), 0.0, pc.divide(summed["accepted_sum"], planned))
    table = pa.table([summed["doc_type"], summed["planned_sum"], summed["accepted_sum"], rate],
                     names=BY_TYPE_SCHEMA.names)  # fmt: skip
    return table.cast(BY_TYPE_SCHEMA)


def coverage_summary(
    coverage: pa.Table, by_type: pa.Table, personas: pa.Table | None = None
) -> dict[str, Any]:
    """`coverage.json`: facts planned vs revealed vs verified, and acceptance per type."""
    facts = {
        "planned": _positive(coverage, "planned"),
        "revealed": _positive(coverage, "accepted"),
        "verified": _positive(coverage, "verified"),
    }
    if personas is not None and "facts" in personas.column_names:
        total = pc.sum(pc.list_value_length(personas["facts"])).as_py() or 0
        facts = {"facts_total": int(total), **facts}
    rows = by_type.to_pylist()
    for row in rows:
        row["rate"] = round(row["rate"], 4)
    return {"facts": facts, "by_type": rows}


def _positive(table: pa.Table, column: str) -> int:
    return int(pc.sum(pc.greater(table[column], 0)).as_py() or 0) if table.num_rows else 0
