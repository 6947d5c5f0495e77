"""The run's coverage report adds the per-shard reports per key, not per row."""

from __future__ import annotations

import pyarrow as pa

from personafoundry.doc_coverage import combine_by_type, combine_coverage, coverage_summary


def test_a_fact_planned_in_two_shards_is_one_row_with_summed_counts() -> None:
    shard_a = pa.table({"persona_id": ["p1", "p1"], "fact_id": ["f1", "f2"],
                        "planned": [1, 1], "accepted": [1, 0], "verified": [1, 0]})  # fmt: skip
    shard_b = pa.table({"persona_id": ["p1", "p2"], "fact_id": ["f2", "f9"],
                        "planned": [2, 1], "accepted": [1, 0], "verified": [0, 0]})  # fmt: skip
    combined = combine_coverage(pa.concat_tables([shard_a, shard_b]))
    assert combined.to_pylist() == [
        {"persona_id": "p1", "fact_id": "f1", "planned": 1, "accepted": 1, "verified": 1},
        {"persona_id": "p1", "fact_id": "f2", "planned": 3, "accepted": 1, "verified": 0},
        {"persona_id": "p2", "fact_id": "f9", "planned": 1, "accepted": 0, "verified": 0},
    ]
    by_type = combine_by_type(
        pa.table(
            {
                "doc_type": ["email", "receipt", "email"],
                "planned": [2, 1, 2],
                "accepted": [1, 0, 2],
                "rate": [0.5, 0.0, 1.0],
            }
        )
    )
    assert by_type.to_pylist() == [
        {"doc_type": "email", "planned": 4, "accepted": 3, "rate": 0.75},
        {"doc_type": "receipt", "planned": 1, "accepted": 0, "rate": 0.0},
    ]
    personas = pa.table({"persona_id": ["p1", "p2"], "facts": [[{"fact_id": "f1"}] * 3,
                                                              [{"fact_id": "f9"}] * 2]})  # fmt: skip
    summary = coverage_summary(combined, by_type, personas)
    assert summary["facts"] == {"facts_total": 5, "planned": 3, "revealed": 2, "verified": 1}
    assert summary["by_type"][0] == {"doc_type": "email", "planned": 4, "accepted": 3,
                                     "rate": 0.75}  # fmt: skip


def test_no_documents_gives_empty_tables_and_zero_counts() -> None:
    summary = coverage_summary(combine_coverage(None), combine_by_type(None))
    assert summary == {"facts": {"planned": 0, "revealed": 0, "verified": 0}, "by_type": []}
