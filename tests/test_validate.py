"""Validation: every kind of expectation fails on a crafted bad table and names the rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from personafoundry.census_gate import census_gate
from personafoundry.config import PersonasConfig, ValidateConfig
from personafoundry.errors import ValidationFailed
from personafoundry.synthetic import synthetic_tables
from personafoundry.validate import (
    ValidationReport,
    describe_failure,
    fingerprint_tables,
    reuse_report,
    validate_tables,
)

CFG = ValidateConfig()


def edit(tables: dict[str, pa.Table], table: str, column: str, fn: Callable[[list], None]) -> None:
    """Apply `fn` to a Python copy of one column (in place) and put it back."""
    t = tables[table]
    values = t[column].to_pylist()
    fn(values)
    i = t.schema.get_field_index(column)
    tables[table] = t.set_column(
        i, t.schema.field(i).with_nullable(True), pa.array(values, t.schema.field(i).type)
    )


def setitem(index: int, value: Any) -> Callable[[list], None]:
    def apply(values: list) -> None:
        values[index] = value

    return apply


def test_valid_synthetic_tables_pass_every_check() -> None:
    report = validate_tables(synthetic_tables(), CFG)
    assert report.passed, [r for r in report.failures()]
    kinds = {r.kind for r in report.results}
    assert {"schema", "expectation", "nested", "rule", "foreign_key", "coverage"} <= kinds
    assert report.stats["failed"] == 0 and report.stats["checks"] == len(report.results)
    assert set(report.ge_results) == set(synthetic_tables())
    json.dumps(report.to_json())  # the saved results are plain JSON
    assert report.tables["personas"].schema.field("persona_id").nullable is False


# (table, column, edit at row, expected check, expected column)
CASES = [
    ("personas", "name", setitem(2, None), "expect_column_values_to_not_be_null", "name"),
    ("personas", "persona_id", setitem(3, "per_0000000000000000"), "expect_values_to_exist_in", None),
    ("personas", "sex", setitem(1, "Other"), "expect_column_values_to_be_in_set", "sex"),
    ("personas", "age", setitem(4, 150), "expect_column_values_to_be_between", "age"),
    ("documents", "document_id", setitem(2, "doc-2"), "expect_column_values_to_match_regex", "document_id"),
    ("personas", "name", setitem(5, ""), "expect_column_value_lengths_to_be_between", "name"),
    ("reviews", "score", setitem(0, 9.5), "expect_column_values_to_be_between", "score"),
    ("probes", "kind", setitem(1, "trick"), "expect_column_values_to_be_in_set", "kind"),
]  # fmt: skip


@pytest.fixture(scope="module")
def broken() -> tuple[Any, str]:
    """One validation of tables carrying every scalar defect of CASES (distinct rows)."""
    tables = synthetic_tables()
    for table, column, change, _, _ in CASES:
        edit(tables, table, column, change)
    report = validate_tables(tables, CFG)
    with pytest.raises(ValidationFailed) as err:
        report.raise_for_failures()
    return report, str(err.value)


@pytest.mark.parametrize(("table", "column", "change", "check", "failed_column"), CASES)
def test_scalar_expectation_failure_names_table_expectation_and_row(
    broken: tuple[Any, str],
    table: str,
    column: str,
    change: Callable[[list], None],
    check: str,
    failed_column: str | None,
) -> None:
    report, message = broken
    failures = [r for r in report.failures() if r.check == check]
    if failed_column:
        failures = [r for r in failures if r.table == table and r.column == failed_column]
    assert failures, report.to_markdown()
    failure = failures[0]
    assert failure.unexpected_count >= 1 and failure.examples
    assert all("__row" in e for e in failure.examples)  # offending rows are named
    assert f"table {failure.table}: {check}({failure.column})" in message


def test_duplicate_primary_key_lists_both_rows() -> None:
    tables = synthetic_tables()
    ids = tables["conversations"]["conversation_id"].to_pylist()
    edit(tables, "conversations", "conversation_id", setitem(1, ids[0]))
    report = validate_tables(tables, CFG)
    (failure,) = [r for r in report.failures() if r.check == "expect_column_values_to_be_unique"]
    assert failure.table == "conversations" and failure.unexpected_count == 2
    assert {e["__row"] for e in failure.examples} == {0, 1}
    assert all(e["conversation_id"] == ids[0] for e in failure.examples)


def _failure(report: Any, check: str, table: str) -> Any:
    found = [r for r in report.failures() if r.check == check and r.table == table]
    assert found, report.to_markdown()
    return found[0]


def test_list_length_and_nested_uniqueness_are_checked() -> None:
    tables = synthetic_tables()
    pids = tables["personas"]["persona_id"].to_pylist()
    edit(tables, "conversations", "persona_ids", setitem(2, [pids[0], pids[1], pids[2]]))
    facts = tables["personas"]["facts"].to_pylist()
    facts[1][0]["fact_id"] = facts[0][0]["fact_id"]
    edit(tables, "personas", "facts", lambda v: v.__setitem__(1, facts[1]))
    report = validate_tables(tables, CFG)
    length = _failure(report, "expect_list_lengths_to_be_between", "conversations")
    assert length.examples == [{"__row": 2, "conversation_id": tables["conversations"]["conversation_id"][2].as_py(), "length": 3}]  # fmt: skip
    unique = _failure(report, "expect_nested_values_to_be_unique", "personas")
    assert {e["__row"] for e in unique.examples} == {0, 1}


def test_row_rules_report_the_rule_and_rows() -> None:
    tables = synthetic_tables()
    edit(tables, "personas", "seed_text", setitem(0, "census rows have no seed text"))
    pids = tables["personas"]["persona_id"].to_pylist()
    edit(tables, "conversations", "persona_ids", setitem(3, [pids[3], pids[3]]))
    report = validate_tables(tables, CFG)
    seed = _failure(report, "rule:seed_text_matches_source", "personas")
    assert [e["__row"] for e in seed.examples] == [0]
    assert "seed_text" in seed.note
    pair = _failure(report, "rule:two_distinct_personas", "conversations")
    assert [e["__row"] for e in pair.examples] == [3]


def test_foreign_keys_across_tables_name_the_missing_value() -> None:
    tables = synthetic_tables()
    edit(tables, "conversations", "persona_ids", setitem(0, ["per_ffffffffffffffff", tables["conversations"]["persona_ids"][0][1].as_py()]))  # fmt: skip
    other_fact = tables["personas"]["facts"][1][0]["fact_id"].as_py()  # a fact of persona 1
    edit(tables, "documents", "revealed_fact_ids", setitem(0, [other_fact]))  # doc 0 is persona 0's
    doc_of_persona_1 = tables["documents"]["document_id"][1].as_py()
    edit(tables, "probes", "evidence_document_ids", setitem(0, [doc_of_persona_1]))
    report = validate_tables(tables, CFG)
    fk = _failure(report, "expect_values_to_exist_in", "conversations")
    assert fk.examples[0]["persona_ids"] == "per_ffffffffffffffff"
    assert fk.params["references"] == "personas.persona_id"
    scoped = _failure(report, "expect_values_to_exist_in_same", "documents")
    assert scoped.examples[0]["revealed_fact_ids"] == other_fact
    evidence = _failure(report, "expect_values_to_exist_in_same", "probes")
    assert evidence.column == "evidence_document_ids" and evidence.examples[0]["__row"] == 0


def test_reference_into_a_missing_table_fails() -> None:
    tables = synthetic_tables()
    del tables["personas"]
    report = validate_tables(tables, CFG)
    fk = _failure(report, "expect_values_to_exist_in", "documents")
    assert "not in the release" in fk.note


def test_every_critiqued_item_needs_an_accepted_review() -> None:
    tables = synthetic_tables()
    doc = tables["documents"]["document_id"][4].as_py()
    reviews = tables["reviews"]
    keep = pa.array([item != doc for item in reviews["item_id"].to_pylist()])
    tables["reviews"] = reviews.filter(keep)
    report = validate_tables(tables, CFG)
    coverage = _failure(report, "expect_accepted_items_to_have_reviews", "documents")
    assert coverage.examples == [{"__row": 4, "document_id": doc}]


def test_schema_failures_stop_further_checks_of_that_table() -> None:
    tables = synthetic_tables()
    t = tables["personas"]
    tables["personas"] = t.set_column(t.schema.get_field_index("age"), "age", pa.array(["forty"] * t.num_rows))  # fmt: skip
    tables["people"] = t
    report = validate_tables(tables, CFG)
    schema = _failure(report, "conform_to_arrow_schema", "personas")
    assert "column 'age' has type string" in schema.note
    assert _failure(report, "has_contract", "people")
    assert "FAILED" in report.to_markdown()


def _calibrate_with(tvds: dict[str, float], seen: list[pa.Table]) -> Callable[[pa.Table], Any]:
    def calibrate(table: pa.Table) -> dict[str, Any]:
        seen.append(table)
        return {"vintage": "ACS 2023 1-year", "tables": ["DP05"], "attributes": {
            a: {"tvd": v} for a, v in tvds.items()}, "two_way": {"tvd": {"age x education": 0.05}}}  # fmt: skip

    return calibrate


@pytest.mark.parametrize(
    ("tvd", "conditioned", "min_rows", "status", "success"),
    [
        (0.05, False, 1, "passed", True),
        (0.40, False, 1, "failed", False),
        (0.40, True, 1, "waived", True),
        (0.40, False, 1000, "skipped", True),
    ],
)
def test_census_gate_compares_every_tvd_with_the_threshold(
    tvd: float, conditioned: bool, min_rows: int, status: str, success: bool
) -> None:
    personas = synthetic_tables()["personas"]
    seen: list[pa.Table] = []
    cfg = ValidateConfig(census_tvd_max=0.15, conditioned=conditioned, census_min_rows=min_rows)
    result, record = census_gate(personas, cfg, _calibrate_with({"age": tvd, "sex": 0.01}, seen))
    assert record["status"] == status and result.success is success
    assert record["vintage"] == "ACS 2023 1-year" and record["tables"] == ["DP05"]
    assert record["tvd"]["two_way.tvd.age x education"] == 0.05
    assert set(seen[0]["source"].to_pylist()) == {"census"}  # only census rows are gated
    if status == "failed":
        assert result.examples == [{"tvd": "attributes.age.tvd", "value": 0.4}]


def test_failed_census_gate_refuses_validation() -> None:
    cfg = ValidateConfig(census_min_rows=1)
    report = validate_tables(synthetic_tables(), cfg, calibrate=_calibrate_with({"age": 0.9}, []))
    assert not report.passed
    assert report.census["status"] == "failed"
    with pytest.raises(ValidationFailed, match="table personas: census_conformance"):
        report.raise_for_failures()


def test_census_rule_violations_fail_the_gate_even_when_conditioned() -> None:
    def calibrate(table: pa.Table) -> dict[str, Any]:
        return {"attributes": {"age": {"tvd": 0.01}}, "rule_violations_total": 2}

    cfg = ValidateConfig(conditioned=True, census_min_rows=1)
    result, record = census_gate(synthetic_tables()["personas"], cfg, calibrate)
    assert not result.success and record["status"] == "failed"
    assert "2 census consistency-rule violations" in result.note
    # one marginal TVD + the rule check; the failing one is the rule check, not "3 of 1 rows"
    assert (result.unexpected_count, result.element_count) == (1, 2)
    assert "failed on 1 of 2 census checks" in describe_failure(result)


def test_gate_uses_the_real_calibration_report_by_default() -> None:
    pytest.importorskip("personafoundry.calibration")
    personas = synthetic_tables()["personas"]
    result, record = census_gate(personas, ValidateConfig(census_min_rows=1))
    assert record["census_rows"] == 4 and record["rule_violations"] == 0
    assert record["vintage"] and record["tables"]
    assert "attributes.age_band.tvd" in record["tvd"] and "max_tvd" not in record["tvd"]
    assert record["status"] == "failed"  # four fixed profiles are not a census sample
    assert result.examples and not result.success


def _with_temporal_probe(tables: dict[str, pa.Table], **over: Any) -> dict[str, pa.Table]:
    """Probe 0 (persona 0) becomes temporal: current evidence doc 8, outdated doc 0 (older)."""
    probes = tables["probes"].to_pylist()
    docs = tables["documents"].to_pylist()
    facts = tables["personas"]["facts"][0].as_py()
    assert docs[0]["persona_id"] == docs[8]["persona_id"] == probes[0]["persona_id"]
    probes[0] |= {
        "kind": "temporal", "support": "stated", "evidence_document_ids": [docs[8]["document_id"]],
        "outdated_answer": "earlier", "outdated_fact_id": facts[1]["fact_id"],
        "outdated_evidence_document_ids": [docs[0]["document_id"]], **over,
    }  # fmt: skip
    return tables | {"probes": pa.Table.from_pylist(probes, schema=tables["probes"].schema)}


def test_a_temporal_probe_with_outdated_columns_passes() -> None:
    report = validate_tables(_with_temporal_probe(synthetic_tables()), CFG)
    assert report.passed, [r.to_json() for r in report.failures()]
    checked = {r.column for r in report.results if r.table == "probes"}
    assert {"outdated_fact_id", "outdated_evidence_document_ids"} <= checked
    rules = {r.check for r in report.results if r.table == "probes"}
    assert {"rule:outdated_only_for_temporal", "rule:outdated_evidence_is_older"} <= rules


@pytest.mark.parametrize(
    ("over", "check"),
    [
        ({"outdated_answer": None}, "rule:outdated_only_for_temporal"),
        ({"kind": "direct"}, "rule:outdated_only_for_temporal"),  # outdated columns on a direct
        ({"outdated_evidence_document_ids": []}, "rule:outdated_only_for_temporal"),
        ({"evidence_document_ids": []}, "rule:evidence_unless_negative"),
        ({"kind": "negative"}, "rule:evidence_unless_negative"),  # evidence on a negative
        ({"support": "guessed"}, "expect_column_values_to_be_in_set"),
    ],
)
def test_temporal_probe_rules_name_the_offending_probe(over: dict[str, Any], check: str) -> None:
    report = validate_tables(_with_temporal_probe(synthetic_tables(), **over), CFG)
    failure = _failure(report, check, "probes")
    assert failure.examples[0]["__row"] == 0


def test_outdated_evidence_must_be_older_and_of_the_same_persona() -> None:
    tables = synthetic_tables()
    docs = tables["documents"]["document_id"].to_pylist()
    swapped = {"evidence_document_ids": [docs[0]], "outdated_evidence_document_ids": [docs[8]]}
    report = validate_tables(_with_temporal_probe(tables, **swapped), CFG)
    older = _failure(report, "rule:outdated_evidence_is_older", "probes")
    assert [e["__row"] for e in older.examples] == [0]
    foreign = {"outdated_evidence_document_ids": [docs[1]]}  # persona 1's document
    report = validate_tables(_with_temporal_probe(tables, **foreign), CFG)
    fk = _failure(report, "expect_values_to_exist_in_same", "probes")
    assert fk.column == "outdated_evidence_document_ids" and fk.examples[0]["__row"] == 0


def test_a_rule_that_reads_an_absent_table_fails_and_says_why() -> None:
    tables = _with_temporal_probe(synthetic_tables())
    del tables["documents"]
    report = validate_tables(tables, CFG)
    rule = _failure(report, "rule:outdated_evidence_is_older", "probes")
    assert "could not be evaluated: Catalog Error: Table with name documents" in rule.note
    assert rule.unexpected_count == tables["probes"].num_rows


def _drop_last_row(tables: dict[str, pa.Table], table: str) -> None:
    tables[table] = tables[table].slice(0, tables[table].num_rows - 1)


# (what changes after validation, how): every change must change the fingerprint
CHANGES = [
    ("one value", lambda t: edit(t, "personas", "age", setitem(0, 41))),
    ("one nested value", lambda t: edit(t, "conversations", "persona_ids",
                                        lambda v: v[0].reverse())),
    ("one row fewer", lambda t: _drop_last_row(t, "probes")),
    ("a column type", lambda t: t.update(probes=t["probes"].set_column(
        0, "probe_id", t["probes"]["probe_id"].cast(pa.large_string())))),
    ("an extra column", lambda t: t.update(probes=t["probes"].append_column(
        "note", pa.array(["x"] * t["probes"].num_rows)))),
    ("a table missing", lambda t: t.pop("duplicates")),
    ("two tables swapped", lambda t: t.update(reviews=t["duplicates"],
                                              duplicates=t["reviews"])),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_fingerprint_changes_with_any_change_of_the_tables(
    what: str, change: Callable[[dict[str, pa.Table]], Any]
) -> None:
    tables = synthetic_tables()
    before = fingerprint_tables(tables, CFG)
    assert fingerprint_tables(synthetic_tables(), CFG) == before  # same rows, same bytes
    change(tables)
    assert fingerprint_tables(tables, CFG) != before


def test_fingerprint_changes_with_the_settings_a_validation_depends_on() -> None:
    tables = synthetic_tables()
    fingerprints = {
        fingerprint_tables(tables, CFG),
        fingerprint_tables(tables, ValidateConfig(census_tvd_max=0.5)),
        fingerprint_tables(tables, CFG, PersonasConfig()),
        fingerprint_tables(tables, CFG, PersonasConfig(census_count=7)),
    }
    assert len(fingerprints) == 4


@pytest.fixture(scope="module")
def saved() -> tuple[ValidationReport, ValidationReport]:
    """A passed report of the synthetic tables, and the same report read back from JSON."""
    report = validate_tables(synthetic_tables(), CFG)
    return report, ValidationReport.from_json(json.loads(json.dumps(report.to_json())))


def test_saved_report_is_reused_for_the_same_tables_as_if_just_computed(saved) -> None:
    report, loaded = saved
    assert loaded.to_json() == report.to_json() and loaded.tables == {}
    reused = reuse_report(loaded, synthetic_tables(), CFG)
    assert reused is not None and reused.to_json() == report.to_json()
    assert set(reused.tables) == set(report.tables)
    for name, table in report.tables.items():  # conformed like a validation conforms them
        assert reused.tables[name].schema == table.schema and reused.tables[name].equals(table)


def test_saved_report_is_not_reused_for_other_tables_or_settings(saved) -> None:
    _, loaded = saved
    tables = synthetic_tables()
    edit(tables, "personas", "age", setitem(4, 150))
    assert reuse_report(loaded, tables, CFG) is None
    assert reuse_report(loaded, synthetic_tables(), ValidateConfig(max_examples=3)) is None
    assert reuse_report(loaded, synthetic_tables(), CFG, personas_cfg=PersonasConfig()) is None
    calibrate = _calibrate_with({"age": 0.01}, [])  # code: not fingerprinted, never reused
    assert reuse_report(loaded, synthetic_tables(), CFG, calibrate=calibrate) is None


def test_failed_or_unfingerprinted_reports_are_not_reused(broken: tuple[Any, str]) -> None:
    report, _ = broken
    tables = synthetic_tables()
    for table, column, change, _, _ in CASES:
        edit(tables, table, column, change)
    assert report.fingerprint == fingerprint_tables(tables, CFG)  # its tables, but it failed
    assert reuse_report(report, tables, CFG) is None
    custom = validate_tables(synthetic_tables(), CFG, calibrate=_calibrate_with({}, []))
    assert custom.fingerprint == "" and reuse_report(custom, synthetic_tables(), CFG) is None
