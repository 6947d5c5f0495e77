"""Contract of the `probes` table: questions benchmark authors ask an assistant about a persona."""

from __future__ import annotations

import pyarrow as pa

from personafoundry.schema import Column, RowRule, TableSchema
from schemas.common import id_column

SCHEMA = TableSchema(
    name="probes",
    description="One row per probe question with its reference answer, the fact it tests and "
    "the documents that hold the evidence.",
    primary_key="probe_id",
    columns=(
        id_column("probe_id", "stable probe ID", unique=True),
        id_column("persona_id", "persona the probe is about", references="personas.persona_id"),
        Column(
            "question",
            pa.string(),
            nullable=False,
            description="what the persona might ask its assistant (a fill-in-the-blank when the "
            "fact does not turn into a clean question)",
            length=(1, None),
        ),
        Column(
            "answer",
            pa.string(),
            nullable=False,
            description="reference answer: an exact span of the fact, or 'unknown'",
        ),
        Column(
            "fact_id",
            pa.string(),
            description="the fact tested; for negative probes, the withheld fact (never revealed)",
            references="personas.facts.fact_id",
            scope="persona_id",
        ),
        Column(
            "evidence_document_ids",
            pa.list_(pa.string()),
            nullable=False,
            description="documents of this persona that contain the answer",
            references="documents.document_id",
            scope="persona_id",
        ),
        Column(
            "kind",
            pa.string(),
            nullable=False,
            description="`direct` (fact stated in a document), `negative` (withheld: the answer "
            "is `unknown`), `temporal` (a changed fact: current answer, earlier one in brackets)",
            allowed=("direct", "negative", "temporal"),
        ),
    ),
    rules=(
        RowRule(
            "fact_unless_negative",
            "kind = 'negative' OR fact_id IS NOT NULL",
            "only negative probes may lack a `fact_id`",
        ),
    ),
)
