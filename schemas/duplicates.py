"""Contract of the `duplicates` table: every row removed by dedup, and why.

`kept_id` may name an item of an earlier release (dedup runs against all earlier
versions), so it is not a foreign key into this release.
"""

from __future__ import annotations

import pyarrow as pa

from personafoundry.schema import Column, RowRule, TableSchema
from schemas.common import id_column

SCHEMA = TableSchema(
    name="duplicates",
    description="One row per item removed as a near duplicate, with the item kept instead.",
    primary_key="item_id",
    columns=(
        Column(
            "table",
            pa.string(),
            nullable=False,
            description="table the item was removed from",
            allowed=("personas", "conversations", "documents"),
        ),
        id_column("item_id", "the removed item", unique=True),
        id_column("kept_id", "the cluster member kept"),
        Column("cluster_id", pa.string(), nullable=False, description="stable duplicate cluster"),
        Column(
            "similarity",
            pa.float64(),
            nullable=False,
            description="estimated Jaccard similarity to the kept item",
            min=0.0,
            max=1.0,
        ),
        Column(
            "reason",
            pa.string(),
            nullable=False,
            description="why it was removed",
            allowed=("near_duplicate",),
        ),
    ),
    rules=(RowRule("not_self_duplicate", "item_id <> kept_id", "an item is not its own keeper"),),
)
