"""Table contracts: Arrow schemas, conforming stage output, the card's column tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personafoundry.errors import ValidationFailed
from personafoundry.schema import (
    Column,
    TableSchema,
    column_table_markdown,
    conform_table,
    empty_table,
)
from personafoundry.synthetic import synthetic_tables
from schemas import SCHEMA_VERSION, TABLES, get_schema

EXPECTED_TABLES = {"personas", "conversations", "documents", "probes", "reviews", "duplicates"}


def test_every_table_has_a_contract_with_a_unique_primary_key() -> None:
    assert set(TABLES) == EXPECTED_TABLES
    assert SCHEMA_VERSION.count(".") == 2
    for name, schema in TABLES.items():
        pk = schema.column(schema.primary_key)
        assert schema.name == name
        assert pk.unique and not pk.nullable, name
        assert len(set(schema.names)) == len(schema.names), f"{name}: duplicate column"
        assert all(c.description for c in schema.columns), f"{name}: column without description"


def test_contract_types_match_the_agreed_table_contracts() -> None:
    personas = TABLES["personas"].arrow_schema()
    assert personas.field("age").type == pa.int16()
    assert personas.field("household_income").type == pa.int64()
    assert personas.field("traits").type.field("openness").type == pa.float32()
    facts = personas.field("facts").type.value_type.names
    assert facts == ["fact_id", "category", "statement", "valid_from", "valid_to"]
    documents = TABLES["documents"].arrow_schema()
    assert documents.field("timestamp").type == pa.timestamp("s", tz="UTC")
    critic = TABLES["conversations"].arrow_schema().field("critic_scores").type.value_type
    assert [(f.name, f.type) for f in critic] == [
        ("expert", pa.string()),
        ("score", pa.float64()),
        ("passed", pa.bool_()),
    ]
    assert not personas.field("persona_id").nullable
    assert personas.field("seed_text").nullable


@pytest.mark.parametrize("table", sorted(EXPECTED_TABLES))
def test_parquet_round_trip_keeps_the_exact_schema(table: str, tmp_path: Path) -> None:
    data = synthetic_tables()[table]
    schema = get_schema(table)
    conformed, extra = conform_table(data, schema)
    assert extra == []
    pq.write_table(conformed, tmp_path / "t.parquet")
    # Parquet stores timestamp[s] as [ms] and names list items `element`: conforming the
    # file read back gives the contract again, value for value.
    back, _ = conform_table(pq.read_table(tmp_path / "t.parquet"), schema)
    assert back.schema.equals(schema.arrow_schema(), check_metadata=True)
    assert back.equals(conformed)
    assert empty_table(schema).schema.equals(schema.arrow_schema())


def test_conform_reorders_casts_adds_optional_and_drops_extra_columns() -> None:
    data = synthetic_tables()["probes"]
    shuffled = data.select(list(reversed(data.column_names))).drop_columns(["fact_id"])
    shuffled = shuffled.append_column("helper_score", pa.array([1.0] * data.num_rows))
    conformed, extra = conform_table(shuffled, TABLES["probes"])
    assert conformed.column_names == TABLES["probes"].names
    assert extra == ["helper_score"]
    assert conformed["fact_id"].null_count == data.num_rows
    reviews = synthetic_tables()["reviews"]
    wide = reviews.set_column(3, "round", reviews["round"].cast(pa.int64()))
    assert wide.schema.field("round").type == pa.int64()
    assert conform_table(wide, TABLES["reviews"])[0].equals(reviews)


def test_conform_refuses_extra_columns_when_asked() -> None:
    data = synthetic_tables()["probes"].append_column("x", pa.array([1] * 6))
    with pytest.raises(ValidationFailed, match=r"table probes: unexpected columns \['x'\]"):
        conform_table(data, TABLES["probes"], drop_extra=False)


def test_conform_names_table_and_column_of_a_missing_required_column() -> None:
    data = synthetic_tables()["documents"].drop_columns(["body"])
    with pytest.raises(ValidationFailed, match=r"table documents: required column 'body'"):
        conform_table(data, TABLES["documents"])


def test_conform_names_a_column_that_does_not_cast() -> None:
    data = synthetic_tables()["personas"]
    bad = data.set_column(data.schema.get_field_index("age"), "age", pa.array(["forty"] * 8))
    with pytest.raises(ValidationFailed, match=r"table personas: column 'age' has type string"):
        conform_table(bad, TABLES["personas"])


def test_conform_refuses_nulls_in_non_null_columns_unless_allowed() -> None:
    data = synthetic_tables()["reviews"]
    names = data["expert"].to_pylist()
    names[3] = None
    bad = data.set_column(data.schema.get_field_index("expert"), "expert", pa.array(names))
    with pytest.raises(ValidationFailed, match=r"column 'expert' is declared non-null but has 1"):
        conform_table(bad, TABLES["reviews"])
    relaxed, _ = conform_table(bad, TABLES["reviews"], allow_nulls=True)
    assert relaxed["expert"].null_count == 1


def test_column_table_lists_every_column_type_and_constraint() -> None:
    text = column_table_markdown(TABLES["conversations"])
    for column in TABLES["conversations"].names:
        assert f"| `{column}` |" in text
    assert "length [2, 2]; references `personas.persona_id`" in text
    assert "`list<struct<speaker_id: string, text: string>>`" in text
    assert "Rule `speakers_are_participants`" in text
    probes = column_table_markdown(TABLES["probes"])
    assert "one of `direct`, `negative`, `temporal`" in probes
    assert "| `outdated_evidence_document_ids` | `list<string>` | yes |" in probes
    assert "Rule `outdated_only_for_temporal`" in probes


def test_temporal_probe_columns_are_nullable_and_point_at_facts_and_documents() -> None:
    probes = TABLES["probes"]
    for name in (
        "support",
        "outdated_answer",
        "outdated_fact_id",
        "outdated_evidence_document_ids",
    ):
        assert probes.column(name).nullable, name
    assert probes.column("outdated_fact_id").references == "personas.facts.fact_id"
    evidence = probes.column("outdated_evidence_document_ids")
    assert (evidence.references, evidence.scope) == ("documents.document_id", "persona_id")
    assert probes.column("support").allowed == ("stated", "implied")


def test_fingerprint_changes_with_the_shape_not_the_description() -> None:
    base = TableSchema("t", "d", "id", (Column("id", pa.string(), False, "x"),))
    described = TableSchema("t", "other", "id", (Column("id", pa.string(), False, "y"),))
    retyped = TableSchema("t", "d", "id", (Column("id", pa.int64(), False, "x"),))
    assert base.fingerprint() == described.fingerprint()
    assert base.fingerprint() != retyped.fingerprint()


def test_unknown_table_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known:"):
        get_schema("people")
