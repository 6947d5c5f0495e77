"""Checks Great Expectations cannot express, run with DuckDB over the Arrow tables.

Great Expectations 1.x validates scalar columns of one dataframe; our contracts also
constrain list and struct columns (list lengths, fields inside lists, keys unique
across all lists of a table), rules over several columns of a row, and references
between tables (a conversation's personas exist, a document reveals facts of its own
persona, every critiqued item has an accepted review). Each is one SQL query that
returns the offending rows, so a failure can name them.

Decisions:
- A rule that evaluates to NULL fails: a contract predicate that cannot be decided on
  a row is a data problem, not a pass.
- Offending rows are reported by row number (`__row`, 0-based, in the table as given)
  and primary key, at most `max_examples` of them; counts are exact.
- A reference into a table that is absent from the release fails (the release would
  not be self-contained); items without critic scores need no review.
- A row rule may read another table through a scalar subquery (a temporal probe's
  outdated evidence must predate its current evidence, which needs `documents`). A rule
  that cannot be evaluated, e.g. because that table is absent, fails with DuckDB's error
  in its note, counting every row, like a reference into an absent table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from personafoundry.schema import Column, RowRule, TableSchema

ROW = "__row"
REVIEWED_KINDS = {"personas": "persona", "conversations": "conversation", "documents": "document"}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation or check on one table.

    `kind` is `schema`, `expectation` (Great Expectations), `nested`, `rule`,
    `foreign_key`, `coverage` or `census`. `examples` are offending rows as dicts
    (row number, primary key, offending value).
    """

    table: str
    check: str
    kind: str
    success: bool
    column: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    unexpected_count: int = 0
    element_count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "check": self.check,
            "kind": self.kind,
            "success": self.success,
            "column": self.column,
            "params": self.params,
            "unexpected_count": self.unexpected_count,
            "element_count": self.element_count,
            "examples": self.examples,
            "note": self.note,
        }


def q(name: str) -> str:
    """Quote a SQL identifier (`table` is a column name in `duplicates`)."""
    return '"' + name.replace('"', '""') + '"'


def register_tables(tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB connection with every table registered under its name + `__row`."""
    con = duckdb.connect(":memory:")
    for name, table in tables.items():
        numbered = table.append_column(ROW, pa.array(range(table.num_rows), pa.int64()))
        con.register(name, numbered)
    return con


def _failing(
    con: duckdb.DuckDBPyConnection, sql: str, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """Count the rows of `sql` and return the first `limit` as dicts, ordered by row."""
    count = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    if not count:
        return 0, []
    rel = con.execute(f"SELECT * FROM ({sql}) ORDER BY {q(ROW)} LIMIT {limit}")
    names = [d[0] for d in rel.description]
    return count, [dict(zip(names, _jsonable(row))) for row in rel.fetchall()]


def _jsonable(row: tuple[Any, ...]) -> list[Any]:
    return [v if v is None or isinstance(v, (int, float, str, bool)) else str(v) for v in row]


def run_table_checks(
    con: duckdb.DuckDBPyConnection, schema: TableSchema, present: set[str], limit: int
) -> list[CheckResult]:
    """Nested-column checks, row rules and foreign keys of one registered table."""
    results = []
    t, pk = q(schema.name), q(schema.primary_key)
    n = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    for col in schema.columns:
        if col.is_nested and not col.nullable:
            sql = f"SELECT {q(ROW)}, {pk} FROM {t} WHERE {q(col.name)} IS NULL"
            count, examples = _failing(con, sql, limit)
            check = "expect_column_values_to_not_be_null"
            results.append(
                CheckResult(
                    schema.name, check, "nested", count == 0, col.name, {}, count, n, examples
                )
            )
        if col.is_nested and col.length:
            results.append(_list_length(con, schema, col, n, limit))
        if col.references:
            results.append(_foreign_key(con, schema, col, present, n, limit))
    for path in schema.nested_keys:
        results.append(_nested_unique(con, schema, path, n, limit))
    results += [_row_rule(con, schema, rule, n, limit) for rule in schema.rules]
    return results


def _row_rule(
    con: duckdb.DuckDBPyConnection, schema: TableSchema, rule: RowRule, n: int, limit: int
) -> CheckResult:
    """Rows where `rule` is false or NULL; a rule that cannot run fails with the error."""
    t, pk = q(schema.name), q(schema.primary_key)
    sql = f"SELECT {q(ROW)}, {pk} FROM {t} WHERE NOT coalesce(({rule.sql}), false)"
    note, evaluated = rule.description, True
    try:
        count, examples = _failing(con, sql, limit)
    except duckdb.Error as err:  # e.g. it reads a table that is not in the release
        count, examples, evaluated = n, [], False
        note = f"{rule.description} [could not be evaluated: {str(err).splitlines()[0]}]"
    return CheckResult(
        schema.name,
        f"rule:{rule.name}",
        "rule",
        evaluated and count == 0,
        None,
        {"sql": rule.sql},
        count,
        n,
        examples,
        note,
    )


def _list_length(
    con: duckdb.DuckDBPyConnection, schema: TableSchema, col: Column, n: int, limit: int
) -> CheckResult:
    lo, hi = col.length or (None, None)
    conds = [f"len({q(col.name)}) >= {lo}"] if lo is not None else []
    conds += [f"len({q(col.name)}) <= {hi}"] if hi is not None else []
    cond = " AND ".join(conds) or "true"
    sql = (
        f"SELECT {q(ROW)}, {q(schema.primary_key)}, len({q(col.name)}) AS length "
        f"FROM {q(schema.name)} WHERE {q(col.name)} IS NOT NULL AND NOT ({cond})"
    )
    count, examples = _failing(con, sql, limit)
    return CheckResult(
        schema.name,
        "expect_list_lengths_to_be_between",
        "nested",
        count == 0,
        col.name,
        {"min_length": lo, "max_length": hi},
        count,
        n,
        examples,
    )


def _nested_unique(
    con: duckdb.DuckDBPyConnection, schema: TableSchema, path: str, n: int, limit: int
) -> CheckResult:
    column, fld = path.split(".", 1)
    keys = (
        f"SELECT {q(ROW)}, {q(schema.primary_key)}, e.{q(fld)} AS key FROM "
        f"(SELECT {q(ROW)}, {q(schema.primary_key)}, unnest({q(column)}) AS e "
        f"FROM {q(schema.name)})"
    )
    sql = (
        f"SELECT * FROM ({keys}) WHERE key IN "
        f"(SELECT key FROM ({keys}) WHERE key IS NOT NULL GROUP BY key HAVING count(*) > 1)"
    )
    count, examples = _failing(con, sql, limit)
    return CheckResult(
        schema.name,
        "expect_nested_values_to_be_unique",
        "nested",
        count == 0,
        path,
        {"path": path},
        count,
        n,
        examples,
    )


def _target_keys(target: str, scope_target: str | None) -> str:
    """SQL yielding (scope, key) for `table.column` or `table.column.field`."""
    parts = target.split(".")
    table, column = q(parts[0]), q(parts[1])
    scope = q(scope_target) if scope_target else "NULL"
    if len(parts) == 2:
        return f"SELECT {scope} AS scope, {column} AS key FROM {table}"
    return (
        f"SELECT scope, e.{q(parts[2])} AS key FROM "
        f"(SELECT {scope} AS scope, unnest({column}) AS e FROM {table})"
    )


def _foreign_key(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    col: Column,
    present: set[str],
    n: int,
    limit: int,
) -> CheckResult:
    assert col.references is not None
    target_table = col.references.split(".")[0]
    params = {"references": col.references, "scope": col.scope}
    name = "expect_values_to_exist_in" if not col.scope else "expect_values_to_exist_in_same"
    if target_table not in present:
        has_values = con.execute(
            f"SELECT count(*) FROM {q(schema.name)} WHERE {q(col.name)} IS NOT NULL"
            + (f" AND len({q(col.name)}) > 0" if col.is_nested else "")
        ).fetchone()[0]
        note = f"table {target_table} is not in the release"
        return CheckResult(
            schema.name,
            name,
            "foreign_key",
            has_values == 0,
            col.name,
            params,
            has_values,
            n,
            [],
            note,
        )
    value = f"unnest({q(col.name)})" if col.is_nested else q(col.name)
    scope = q(col.scope) if col.scope else "NULL"
    src = (
        f"SELECT {q(ROW)}, {q(schema.primary_key)}, {scope} AS scope, {value} AS key "
        f"FROM {q(schema.name)}"
    )
    on = "t.key = s.key" + (" AND t.scope = s.scope" if col.scope else "")
    target = _target_keys(col.references, (col.scope_target or col.scope) if col.scope else None)
    sql = (
        f"SELECT s.{q(ROW)}, s.{q(schema.primary_key)}, s.key AS {q(col.name)} "
        f"FROM ({src}) s WHERE s.key IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM ({target}) t WHERE {on})"
    )
    count, examples = _failing(con, sql, limit)
    return CheckResult(
        schema.name, name, "foreign_key", count == 0, col.name, params, count, n, examples
    )


def review_coverage(
    con: duckdb.DuckDBPyConnection, schemas: dict[str, TableSchema], present: set[str], limit: int
) -> list[CheckResult]:
    """Every item that carries critic scores has at least one accepted review row."""
    results = []
    for table, kind in REVIEWED_KINDS.items():
        if table not in present:
            continue
        pk = q(schemas[table].primary_key)
        n = con.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]
        reviewed = f"SELECT {q(ROW)}, {pk} FROM {q(table)} WHERE len(critic_scores) > 0"
        if "reviews" in present:
            sql = (
                f"SELECT * FROM ({reviewed}) i WHERE NOT EXISTS (SELECT 1 FROM reviews r "
                f"WHERE r.item_id = i.{pk} AND r.item_kind = '{kind}' AND r.accepted)"
            )
            note = "items with critic scores need an accepted review row"
        else:
            sql, note = reviewed, "table reviews is not in the release"
        count, examples = _failing(con, sql, limit)
        results.append(
            CheckResult(
                table,
                "expect_accepted_items_to_have_reviews",
                "coverage",
                count == 0,
                schemas[table].primary_key,
                {"item_kind": kind},
                count,
                n,
                examples,
                note,
            )
        )
    return results
