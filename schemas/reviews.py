"""Contract of the `reviews` table: every critic verdict on every attempt, accepted or not.

Rejected items are not in the release but their reviews are, so `item_id` is not a
foreign key; the reverse holds instead (every critiqued item has an accepted review),
checked in `personafoundry.validate`.

`details` is a JSON object string rather than a struct column: each expert reports
different findings, and one nullable string keeps the table's shape fixed for every stage
(DuckDB reads it with `details->>'$.key'`). Experts without findings leave it null.
"""

from __future__ import annotations

import pyarrow as pa

from personafoundry.schema import Column, RowRule, TableSchema
from schemas.common import CRITIC_SCORE_MAX, CRITIC_SCORE_MIN, id_column

SCHEMA = TableSchema(
    name="reviews",
    description="One row per (item, round, expert) critic verdict, including failed attempts, "
    "so the critic itself can be studied.",
    primary_key="review_id",
    columns=(
        id_column("review_id", "stable review ID", unique=True),
        id_column("item_id", "the persona, conversation or document reviewed"),
        Column(
            "item_kind",
            pa.string(),
            nullable=False,
            description="which table the item belongs to",
            allowed=("persona", "conversation", "document"),
        ),
        Column("round", pa.int16(), nullable=False, description="attempt number, from 1", min=1),
        Column("expert", pa.string(), nullable=False, description="critic expert name"),
        Column(
            "score",
            pa.float64(),
            description="score; null when the attempt failed",
            min=CRITIC_SCORE_MIN,
            max=CRITIC_SCORE_MAX,
        ),
        Column("passed", pa.bool_(), nullable=False, description="this expert passed the item"),
        Column("feedback", pa.string(), description="the expert's feedback text"),
        Column(
            "accepted",
            pa.bool_(),
            nullable=False,
            description="the item's final verdict after this round",
        ),
        Column("error", pa.string(), description="why the attempt failed; null if it did not"),
        Column("model", pa.string(), description="critic model name"),
        Column("prompt_version", pa.string(), description="version of the critic prompt"),
        Column(
            "details",
            pa.string(),
            description="the expert's findings beyond the score, as a JSON object; null if "
            "none. Conversation `faithfulness`: `used` maps each fact_id the conversation "
            "uses to `entailed`, `neutral` or `contradicted`; `unused_entailed` and "
            "`unused_contradicted` list the other facts the judge found stated or contradicted",
        ),
    ),
    rules=(
        RowRule(
            "details_is_json",
            "details IS NULL OR json_valid(details)",
            "`details` is null or valid JSON",
        ),
        RowRule(
            "failed_attempt_has_error",
            "score IS NOT NULL OR error IS NOT NULL",
            "a review without a score says why in `error`",
        ),
    ),
)
