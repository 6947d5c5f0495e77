"""Contract of the `documents` table: private documents (emails, receipts, notes) of a persona."""

from __future__ import annotations

import pyarrow as pa

from personafoundry.schema import Column, TableSchema
from schemas.common import critic_scores_rule, id_column, provenance_columns

SCHEMA = TableSchema(
    name="documents",
    description="One row per accepted private document of a persona; `revealed_fact_ids` says "
    "which of the persona's facts it reveals.",
    primary_key="document_id",
    columns=(
        id_column("document_id", "stable document ID", unique=True),
        id_column("persona_id", "owner of the document", references="personas.persona_id"),
        Column(
            "doc_type",
            pa.string(),
            nullable=False,
            description="document type from the catalog (email, text thread, receipt, ...)",
        ),
        Column("title", pa.string(), description="subject line or title"),
        Column("body", pa.string(), nullable=False, description="document text", length=(1, None)),
        Column(
            "timestamp",
            pa.timestamp("s", tz="UTC"),
            description="when the document was written (synthetic time, UTC)",
        ),
        Column(
            "revealed_fact_ids",
            pa.list_(pa.string()),
            nullable=False,
            description="facts of this persona the document reveals",
            references="personas.facts.fact_id",
            scope="persona_id",
        ),
        Column(
            "is_distractor",
            pa.bool_(),
            description="true for a noise document that mentions another persona's fact, so "
            "an assistant must not attribute it to this persona",
        ),
        Column(
            "counterpart_id",
            pa.string(),
            description="another persona named in the document (sender, recipient), if any",
            references="personas.persona_id",
        ),
        Column("fields", pa.string(), description="the document's structured fields, as JSON"),
        *provenance_columns("document"),
    ),
    rules=(critic_scores_rule(),),
)
