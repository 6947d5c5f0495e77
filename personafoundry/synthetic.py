"""Contract-valid synthetic tables made without an LLM, for tests and the release benchmark.

The rows are placeholders (repeated phrases), but every contract holds: IDs come
from `make_id`, conversations pair existing personas, documents reveal facts of their
own persona, probes cite their persona's documents, and every critiqued item has an
accepted review. Tests break one thing at a time on top of these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from personafoundry.ids import make_id
from personafoundry.schema import TableSchema
from schemas import TABLES
from schemas.common import US_STATES
from schemas.personas import TRAITS

EXPERTS = ("consistency", "realism")
# Adult profiles with ACS 2023 labels that satisfy seeds/census/rules.toml (copied from
# rows the census sampler produced), cycled through when the real sampler is not used.
PROFILES = (
    {"age": 48, "sex": "Male", "race_ethnicity": "Not Hispanic: Two or More Races",
     "education": "Associate's degree", "employment_status": "Employed",
     "occupation": "Parts Salespersons", "soc_code": "41-2022",
     "marital_status": "Now married, except separated", "household_income": 28664,
     "household_income_bracket": "$25,000 to $34,999"},
    {"age": 74, "sex": "Female", "race_ethnicity": "Not Hispanic: White alone",
     "education": "Graduate or professional degree", "employment_status": "Retired",
     "occupation": None, "soc_code": None, "marital_status": "Widowed",
     "household_income": 254996, "household_income_bracket": "$200,000 or more"},
    {"age": 47, "sex": "Male", "race_ethnicity": "Hispanic or Latino (of any race)",
     "education": "High school graduate (includes equivalency)",
     "employment_status": "Not in labor force", "occupation": None, "soc_code": None,
     "marital_status": "Divorced", "household_income": 67095,
     "household_income_bracket": "$50,000 to $74,999"},
    {"age": 37, "sex": "Female", "race_ethnicity": "Not Hispanic: White alone",
     "education": "Graduate or professional degree", "employment_status": "Employed",
     "occupation": "Marketing Managers", "soc_code": "11-2021", "marital_status": "Separated",
     "household_income": 180165, "household_income_bracket": "$150,000 to $199,999"},
)  # fmt: skip
FACTS_PER_PERSONA = 4
CATEGORIES = ("work", "family", "health", "hobby")


def _table(schema: TableSchema, columns: dict[str, list]) -> pa.Table:
    return pa.table(
        {
            c.name: pa.array(columns[c.name], c.type)
            if c.name in columns or not c.nullable
            else pa.nulls(len(next(iter(columns.values()))), c.type)
            for c in schema.columns
        },
        schema=schema.arrow_schema(),
    )


def _scores(rng: np.random.Generator, n: int) -> list[list[dict]]:
    values = rng.uniform(3.0, 5.0, size=(n, len(EXPERTS))).round(1)
    return [
        [{"expert": e, "score": float(v), "passed": True} for e, v in zip(EXPERTS, row)]
        for row in values
    ]


def _demographics(
    n: int, seed: int, rng: np.random.Generator, realistic_census: bool
) -> dict[str, list]:
    """Demographic columns: PROFILES in turn, or census rows from the real sampler."""
    cols = {k: [PROFILES[i % len(PROFILES)][k] for i in range(n)] for k in PROFILES[0]}
    cols["state"] = rng.choice(US_STATES, n).tolist()
    census_rows = list(range(0, n, 2))
    if realistic_census and census_rows:
        from personafoundry.census import sample_personas
        from personafoundry.config import PersonasConfig

        sample = sample_personas(len(census_rows), PersonasConfig(), rng_seed=seed).table
        for key, values in cols.items():
            for row, value in zip(census_rows, sample[key].to_pylist()):
                values[row] = value
    return cols


def synthetic_personas(
    n: int, seed: int, rng: np.random.Generator, realistic_census: bool = False
) -> pa.Table:
    """Even rows are census personas, odd rows seed personas."""
    ids = [make_id("per", seed, i) for i in range(n)]
    census = [i % 2 == 0 for i in range(n)]
    traits = rng.uniform(0, 1, size=(n, len(TRAITS))).round(3)
    cols = {
        "persona_id": ids,
        "source": ["census" if c else "seed" for c in census],
        "seed_text": [None if c else f"A person from seed line {i}." for i, c in enumerate(census)],
        **_demographics(n, seed, rng, realistic_census),
        "name": [f"Person {i}" for i in range(n)],
        "traits": [dict(zip(TRAITS, map(float, row))) for row in traits],
        "narrative": [f"I am person {i} and I like my work." for i in range(n)],
        "facts": [
            [
                {
                    "fact_id": make_id("fact", seed, pid, j),
                    "category": CATEGORIES[j],
                    "statement": f"Fact {j} about {pid}.",
                }
                for j in range(FACTS_PER_PERSONA)
            ]
            for pid in ids
        ],
        "model": ["synthetic"] * n,
        "prompt_version": ["v1"] * n,
        "critic_scores": _scores(rng, n),
        "rounds": [1] * n,
    }
    return _table(TABLES["personas"], cols)


def synthetic_tables(
    n_personas: int = 8,
    n_conversations: int = 6,
    n_documents: int = 10,
    n_probes: int = 6,
    seed: int = 0,
    realistic_census: bool = False,
) -> dict[str, pa.Table]:
    """All six release tables, mutually consistent, deterministic in `seed`.

    `realistic_census` draws the census personas' demographics with the real census
    sampler (slow on first use: it fits the census model), so the census gate passes on
    large samples; otherwise a few fixed, rule-consistent profiles are cycled.
    """
    rng = np.random.default_rng(seed)
    personas = synthetic_personas(n_personas, seed, rng, realistic_census)
    pids = personas["persona_id"].to_pylist()
    facts = personas["facts"].to_pylist()
    conv_ids = [make_id("conv", seed, i) for i in range(n_conversations)]
    pairs = [(pids[i % n_personas], pids[(i + 1) % n_personas]) for i in range(n_conversations)]
    conversations = _table(
        TABLES["conversations"],
        {
            "conversation_id": conv_ids,
            "persona_ids": [list(p) for p in pairs],
            "scenario": ["Planning a weekend trip."] * n_conversations,
            "turns": [
                [{"speaker_id": p[k % 2], "text": f"Turn {k}."} for k in range(4)] for p in pairs
            ],
            "used_fact_ids": [
                [facts[i % n_personas][0]["fact_id"]] for i in range(n_conversations)
            ],
            "critic_scores": _scores(rng, n_conversations),
            "rounds": [1] * n_conversations,
            "model": ["synthetic"] * n_conversations,
            "prompt_version": ["v1"] * n_conversations,
        },
    )
    doc_ids = [make_id("doc", seed, i) for i in range(n_documents)]
    owner = [i % n_personas for i in range(n_documents)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    documents = _table(
        TABLES["documents"],
        {
            "document_id": doc_ids,
            "persona_id": [pids[o] for o in owner],
            "doc_type": rng.choice(["email", "receipt", "journal note"], n_documents).tolist(),
            "title": [f"Document {i}" for i in range(n_documents)],
            "body": [f"Body of document {i}." for i in range(n_documents)],
            "timestamp": [start + timedelta(hours=i) for i in range(n_documents)],
            "revealed_fact_ids": [
                [facts[o][i % FACTS_PER_PERSONA]["fact_id"]] for i, o in enumerate(owner)
            ],
            "critic_scores": _scores(rng, n_documents),
            "rounds": [1] * n_documents,
            "model": ["synthetic"] * n_documents,
            "prompt_version": ["v1"] * n_documents,
        },
    )
    probe_docs = [i % n_documents for i in range(n_probes)]
    probes = _table(
        TABLES["probes"],
        {
            "probe_id": [make_id("prb", seed, i) for i in range(n_probes)],
            "persona_id": [pids[owner[d]] for d in probe_docs],
            "question": ["What does the document say?"] * n_probes,
            "answer": ["It states a fact."] * n_probes,
            "fact_id": [facts[owner[d]][d % FACTS_PER_PERSONA]["fact_id"] for d in probe_docs],
            "evidence_document_ids": [[doc_ids[d]] for d in probe_docs],
            "kind": ["direct"] * n_probes,
            "support": ["stated"] * n_probes,
        },
    )
    items = [("persona", pids), ("conversation", conv_ids), ("document", doc_ids)]
    reviews = _reviews([(k, i) for k, ids in items for i in ids], seed)
    duplicates = _table(
        TABLES["duplicates"],
        {
            "table": ["documents"],
            "item_id": [make_id("doc", seed, "dup")],
            "kept_id": [doc_ids[0]] if doc_ids else [make_id("doc", seed, 0)],
            "cluster_id": [make_id("clu", seed, 0)],
            "similarity": [0.91],
            "reason": ["near_duplicate"],
        },
    )
    return {
        "personas": personas,
        "conversations": conversations,
        "documents": documents,
        "probes": probes,
        "reviews": reviews,
        "duplicates": duplicates,
    }


def _reviews(items: list[tuple[str, str]], seed: int) -> pa.Table:
    cols: dict[str, list] = {c.name: [] for c in TABLES["reviews"].columns}
    for kind, item_id in items:
        for expert in EXPERTS:
            row = {
                "review_id": make_id("rev", seed, item_id, expert),
                "item_id": item_id,
                "item_kind": kind,
                "round": 1,
                "expert": expert,
                "score": 4.0,
                "passed": True,
                "feedback": "Fine.",
                "accepted": True,
                "error": None,
                "model": "synthetic",
                "prompt_version": "v1",
                "details": None,
            }
            for key, value in row.items():
                cols[key].append(value)
    return _table(TABLES["reviews"], cols)
