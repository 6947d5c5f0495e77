"""Types, value sets and rule builders shared by several table contracts."""

from __future__ import annotations

import pyarrow as pa

from personafoundry.schema import CRITIC_SCORES, Column, RowRule

ID_REGEX = r"^[a-z]+_[0-9a-f]{16}$"
CRITIC_SCORE_MIN = 1.0
CRITIC_SCORE_MAX = 5.0

# The 50 states and DC, as the census tables (PEP 2023) spell them.
US_STATES = (
    "Alabama",
    "Alaska",
    "Arizona",
    "Arkansas",
    "California",
    "Colorado",
    "Connecticut",
    "Delaware",
    "District of Columbia",
    "Florida",
    "Georgia",
    "Hawaii",
    "Idaho",
    "Illinois",
    "Indiana",
    "Iowa",
    "Kansas",
    "Kentucky",
    "Louisiana",
    "Maine",
    "Maryland",
    "Massachusetts",
    "Michigan",
    "Minnesota",
    "Mississippi",
    "Missouri",
    "Montana",
    "Nebraska",
    "Nevada",
    "New Hampshire",
    "New Jersey",
    "New Mexico",
    "New York",
    "North Carolina",
    "North Dakota",
    "Ohio",
    "Oklahoma",
    "Oregon",
    "Pennsylvania",
    "Rhode Island",
    "South Carolina",
    "South Dakota",
    "Tennessee",
    "Texas",
    "Utah",
    "Vermont",
    "Virginia",
    "Washington",
    "West Virginia",
    "Wisconsin",
    "Wyoming",
)


def id_column(name: str, description: str, prefix: str | None = None, **kw: object) -> Column:
    """A non-null string ID made by `personafoundry.ids.make_id`."""
    regex = rf"^{prefix}_[0-9a-f]{{16}}$" if prefix else ID_REGEX
    return Column(name, pa.string(), nullable=False, description=description, regex=regex, **kw)


def provenance_columns(item: str) -> tuple[Column, ...]:
    """`critic_scores`, `rounds`, `model`, `prompt_version`: how an item was generated."""
    return (
        Column(
            "critic_scores",
            CRITIC_SCORES,
            nullable=False,
            description=f"final-round verdict of each critic expert on this {item} "
            f"(score {CRITIC_SCORE_MIN:g}-{CRITIC_SCORE_MAX:g}); empty if not critiqued",
        ),
        Column(
            "rounds",
            pa.int16(),
            nullable=False,
            description="generator attempts used (0 = not LLM-generated)",
            min=0,
            max=100,
        ),
        Column("model", pa.string(), description="generator model name; null if not generated"),
        Column("prompt_version", pa.string(), description="version of the prompt template used"),
    )


def critic_scores_rule() -> RowRule:
    """Every critic score in the list lies in the critic's scale and names its expert."""
    ok = (
        f"s.expert IS NOT NULL AND s.passed IS NOT NULL AND s.score BETWEEN "
        f"{CRITIC_SCORE_MIN} AND {CRITIC_SCORE_MAX}"
    )
    return RowRule(
        "critic_scores_valid",
        f"coalesce(list_bool_and(list_transform(critic_scores, lambda s: {ok})), true)",
        f"every `critic_scores` entry has an expert, a pass flag and a score in "
        f"[{CRITIC_SCORE_MIN:g}, {CRITIC_SCORE_MAX:g}]",
    )
