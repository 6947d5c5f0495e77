"""Contract of the `conversations` table: two-persona multi-turn dialogues."""

from __future__ import annotations

import pyarrow as pa

from personafoundry.schema import Column, RowRule, TableSchema
from schemas.common import critic_scores_rule, id_column, provenance_columns

TURN = pa.struct([pa.field("speaker_id", pa.string()), pa.field("text", pa.string())])

SCHEMA = TableSchema(
    name="conversations",
    description="One row per accepted conversation between two personas, with its scenario, "
    "turns and the critic verdicts that accepted it.",
    primary_key="conversation_id",
    columns=(
        id_column("conversation_id", "stable conversation ID", unique=True),
        Column(
            "persona_ids",
            pa.list_(pa.string()),
            nullable=False,
            description="the two participants",
            length=(2, 2),
            references="personas.persona_id",
        ),
        Column("scenario", pa.string(), nullable=False, description="situation the pair is in"),
        Column(
            "turns",
            pa.list_(TURN),
            nullable=False,
            description="utterances in order, `{speaker_id, text}`",
            length=(2, None),
        ),
        Column(
            "used_fact_ids",
            pa.list_(pa.string()),
            nullable=False,
            description="persona facts the conversation draws on",
            references="personas.facts.fact_id",
        ),
        *provenance_columns("conversation"),
    ),
    rules=(
        RowRule(
            "two_distinct_personas",
            "len(list_distinct(persona_ids)) = 2",
            "a conversation is between two different personas",
        ),
        RowRule(
            "speakers_are_participants",
            "coalesce(list_bool_and(list_transform(turns, lambda t: "
            "list_contains(persona_ids, t.speaker_id) AND length(t.text) > 0)), true)",
            "every turn is spoken by one of the two participants and has text",
        ),
        critic_scores_rule(),
    ),
)
