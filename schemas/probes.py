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
            description="reference answer: an exact span of the fact (for temporal probes, of "
            "the current fact), or 'unknown'",
        ),
        Column(
            "fact_id",
            pa.string(),
            description="the fact tested (for temporal probes, the current one); for negative "
            "probes, the withheld fact (never revealed)",
            references="personas.facts.fact_id",
            scope="persona_id",
        ),
        Column(
            "evidence_document_ids",
            pa.list_(pa.string()),
            nullable=False,
            description="documents of this persona that support `answer`, oldest first; empty "
            "for negative probes",
            references="documents.document_id",
            scope="persona_id",
        ),
        Column(
            "kind",
            pa.string(),
            nullable=False,
            description="`direct` (fact revealed in a document), `negative` (withheld: the "
            "answer is `unknown`), `temporal` (a changed fact: `answer` is the current value, "
            "`outdated_answer` the earlier one)",
            allowed=("direct", "negative", "temporal"),
        ),
        Column(
            "support",
            pa.string(),
            description="how the evidence backs `answer`: `stated` (a cited document states "
            "it) or `implied` (the fact was planned as a hint only and the coverage judge "
            "verified the hint with a quote); null for negative probes",
            allowed=("stated", "implied"),
        ),
        Column(
            "outdated_answer",
            pa.string(),
            description="temporal probes only: the earlier answer, an exact span of the "
            "outdated fact; null for other kinds",
            length=(1, None),
        ),
        Column(
            "outdated_fact_id",
            pa.string(),
            description="temporal probes only: the outdated fact that `fact_id` replaced",
            references="personas.facts.fact_id",
            scope="persona_id",
        ),
        Column(
            "outdated_evidence_document_ids",
            pa.list_(pa.string()),
            description="temporal probes only: documents of this persona that support "
            "`outdated_answer`, oldest first; all older than every `evidence_document_ids`",
            references="documents.document_id",
            scope="persona_id",
        ),
    ),
    rules=(
        RowRule(
            "fact_unless_negative",
            "kind = 'negative' OR fact_id IS NOT NULL",
            "only negative probes may lack a `fact_id`",
        ),
        RowRule(
            "evidence_unless_negative",
            "CASE WHEN kind = 'negative' THEN answer = 'unknown' AND len(evidence_document_ids) "
            "= 0 AND support IS NULL ELSE len(evidence_document_ids) > 0 END",
            "negative probes answer `unknown` with no evidence and no `support`; every other "
            "probe cites at least one document",
        ),
        RowRule(
            "outdated_only_for_temporal",
            "CASE WHEN kind = 'temporal' THEN outdated_answer IS NOT NULL AND "
            "outdated_fact_id IS NOT NULL AND outdated_fact_id <> fact_id AND "
            "len(outdated_evidence_document_ids) > 0 ELSE outdated_answer IS NULL AND "
            "outdated_fact_id IS NULL AND outdated_evidence_document_ids IS NULL END",
            "temporal probes carry `outdated_answer`, a different `outdated_fact_id` and "
            "outdated evidence; other probes carry none of them",
        ),
        RowRule(
            "outdated_evidence_is_older",
            "kind <> 'temporal' OR (SELECT max(d.timestamp) FROM documents d WHERE "
            "list_contains(probes.outdated_evidence_document_ids, d.document_id)) < "
            "(SELECT min(d.timestamp) FROM documents d WHERE "
            "list_contains(probes.evidence_document_ids, d.document_id))",
            "every outdated evidence document of a temporal probe is older than every current "
            "one (reads `documents`)",
        ),
    ),
)
