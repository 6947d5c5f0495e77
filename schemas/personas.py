"""Contract of the `personas` table: census-sampled and seed personas, enriched by the LLM.

Demographic labels follow the ACS 2023 tables in `seeds/census/` (see its SOURCES.md);
only the closed sets that cannot drift (sex, state, source) are enforced here, the
census-conformance gate in `personafoundry.validate` checks the distributions.
Big Five traits are percentiles (0-1) of independent T-scores N(50, 10) clipped to
[20, 80], sampled independently of demographics (`personafoundry.persona_fill`).
`name` is unique within a release (`personafoundry.unique_names`).
`census_vintage`/`census_tables` name the census data behind a row's demographics; they
are nullable only so that hand-built fixtures conform, the samplers (`personafoundry.census`,
`personafoundry.census_condition`) always fill them.
"""

from __future__ import annotations

import pyarrow as pa

from personafoundry.schema import Column, RowRule, TableSchema
from schemas.common import US_STATES, critic_scores_rule, id_column, provenance_columns

TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
TRAITS_TYPE = pa.struct([pa.field(t, pa.float32()) for t in TRAITS])
FACT = pa.struct(
    [
        pa.field("fact_id", pa.string()),
        pa.field("category", pa.string()),
        pa.field("statement", pa.string()),
        # Years a fact held, when it changed (e.g. a former job); null = still true.
        pa.field("valid_from", pa.int16()),
        pa.field("valid_to", pa.int16()),
    ]
)

_traits_ok = " AND ".join(f"traits.{t} BETWEEN 0 AND 1" for t in TRAITS)
_fact_ok = "f.fact_id IS NOT NULL AND f.category IS NOT NULL AND length(f.statement) > 0"

SCHEMA = TableSchema(
    name="personas",
    description="One row per synthetic person: demographics, Big Five traits, a first-person "
    "narrative and the atomic facts that conversations and documents must agree with.",
    primary_key="persona_id",
    nested_keys=("facts.fact_id",),
    columns=(
        id_column("persona_id", "stable persona ID", prefix="per", unique=True),
        Column(
            "source",
            pa.string(),
            nullable=False,
            description="`census` = sampled from ACS marginals; `seed` = from a seed persona file",
            allowed=("census", "seed"),
        ),
        Column("seed_text", pa.string(), description="the seed persona text; null for census"),
        Column("age", pa.int16(), nullable=False, description="age in years", min=0, max=120),
        Column(
            "sex", pa.string(), nullable=False, description="ACS sex", allowed=("Male", "Female")
        ),
        Column("race_ethnicity", pa.string(), description="ACS race/ethnicity label"),
        Column("state", pa.string(), description="US state of residence", allowed=US_STATES),
        Column("education", pa.string(), description="ACS educational attainment; null under 3"),
        Column("employment_status", pa.string(), description="ACS employment status label"),
        Column("occupation", pa.string(), description="occupation title; null if not employed"),
        Column("soc_code", pa.string(), description="BLS SOC code", regex=r"^\d{2}-\d{4}$"),
        Column("marital_status", pa.string(), description="ACS marital status; null under 15"),
        Column("household_income", pa.int64(), description="household income, USD per year"),
        Column("household_income_bracket", pa.string(), description="ACS income bracket label"),
        Column(
            "name",
            pa.string(),
            nullable=False,
            description="full name from the SSA/Census 2020 name tables (or the seed file); "
            "unique within a release",
            unique=True,
            length=(1, 200),
        ),
        Column(
            "census_vintage",
            pa.string(),
            description="census vintage the demographics were sampled from (census and seed "
            "personas alike; see seeds/census/SOURCES.md)",
        ),
        Column(
            "census_tables",
            pa.string(),
            description="census tables behind the demographics (ACS/PEP/OEWS table ids, "
            "separated by '; ')",
        ),
        Column(
            "traits",
            TRAITS_TYPE,
            description="Big Five personality traits: percentiles (0-1) of independent "
            "T-scores (mean 50, sd 10, clipped to 20-80), independent of demographics",
        ),
        Column("narrative", pa.string(), description="first-person description of the persona"),
        Column(
            "facts",
            pa.list_(FACT),
            nullable=False,
            description="atomic facts `{fact_id, category, statement}`; fact_id unique",
        ),
        *provenance_columns("persona"),
    ),
    rules=(
        RowRule(
            "seed_text_matches_source",
            "(source = 'seed') = (seed_text IS NOT NULL)",
            "`seed_text` is set exactly for `source = seed` personas",
        ),
        RowRule(
            "traits_in_range",
            f"traits IS NULL OR ({_traits_ok})",
            "each Big Five trait is in [0, 1]",
        ),
        RowRule(
            "facts_complete",
            f"coalesce(list_bool_and(list_transform(facts, lambda f: {_fact_ok})), true)",
            "every fact has an id, a category and a non-empty statement",
        ),
        RowRule(
            "marital_status_adults_only",
            "marital_status IS NULL OR age >= 15",
            "marital status is only given from age 15 (ACS universe)",
        ),
        critic_scores_rule(),
    ),
)
