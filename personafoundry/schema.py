"""The table-contract model: one `TableSchema` per table, declared in `schemas/`.

A schema file is the single source for three things: the Arrow schema every stage
produces (`arrow_schema`), the validation suite (`personafoundry.validate` builds
Great Expectations expectations for scalar columns and DuckDB checks for nested
columns, row rules and foreign keys from it) and the column table of the dataset
card (`column_table_markdown`).

Decisions:
- Columns carry their own expectations (`unique`, `allowed`, `min`/`max`, `regex`,
  `length`, `references`) so a contract reads as one list; rules that span several
  columns or reach inside lists are `RowRule`s, written as DuckDB SQL predicates over
  one row, because Great Expectations does not evaluate list/struct values.
- `references` is `table.column` or `table.column.field` (a field of a list of
  structs); `scope` names a column that must also match, so "every revealed fact is
  a fact of this document's persona" is one declaration, not code.
- `conform_table` is strict about what matters (a missing non-null column, a value
  that does not cast) and lenient about order and extras (extras are dropped and
  reported), so stages may carry helper columns until the release.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pyarrow as pa

from personafoundry.errors import ValidationFailed

CRITIC_SCORE = pa.struct(
    [
        pa.field("expert", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("passed", pa.bool_()),
    ]
)
CRITIC_SCORES = pa.list_(CRITIC_SCORE)


@dataclass(frozen=True)
class Column:
    """One column: its Arrow type, nullability, meaning and expectations.

    Attributes:
        unique: values are unique within the table (nulls ignored).
        allowed: the closed set of allowed values.
        min, max: inclusive numeric range.
        regex: every non-null string value matches (Python `re.search` semantics; anchor it).
        length: (min, max) characters of a string or items of a list; None = open end.
        references: `table.column[.field]` every value (or list element) must exist in.
        scope: a column of this table whose value must equal the referenced row's
            `scope_target` (default: same name), e.g. a fact must belong to the same persona.
    """

    name: str
    type: pa.DataType
    nullable: bool = True
    description: str = ""
    unique: bool = False
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    length: tuple[int | None, int | None] | None = None
    references: str | None = None
    scope: str | None = None
    scope_target: str | None = None

    @property
    def is_nested(self) -> bool:
        return pa.types.is_nested(self.type)


@dataclass(frozen=True)
class RowRule:
    """A predicate every row must satisfy, as DuckDB SQL over the row's columns."""

    name: str
    sql: str
    description: str


@dataclass(frozen=True)
class TableSchema:
    """A table contract: ordered columns, the primary key and row rules."""

    name: str
    description: str
    primary_key: str
    columns: tuple[Column, ...]
    rules: tuple[RowRule, ...] = ()
    nested_keys: tuple[str, ...] = field(default=())  # `column.field` unique across the table

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name} has no column {name!r}")

    @property
    def names(self) -> list[str]:
        return [col.name for col in self.columns]

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema, with descriptions as field metadata."""
        fields = [
            pa.field(c.name, c.type, nullable=c.nullable, metadata={"description": c.description})
            for c in self.columns
        ]
        return pa.schema(fields, metadata={"table": self.name, "description": self.description})

    def fingerprint(self) -> str:
        """SHA-256 prefix over names, types and nullability: changes iff the contract's shape does."""
        shape = [[c.name, str(c.type), c.nullable] for c in self.columns]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


def empty_table(schema: TableSchema) -> pa.Table:
    """A zero-row table with the contract's exact Arrow schema."""
    return schema.arrow_schema().empty_table()


def conform_table(
    table: pa.Table, schema: TableSchema, *, drop_extra: bool = True, allow_nulls: bool = False
) -> tuple[pa.Table, list[str]]:
    """Reorder and cast `table` to the contract; return it and the extra columns dropped.

    A missing nullable column is added as nulls (stages may omit optional columns); a
    missing non-null column or an uncastable column raises `ValidationFailed` naming the
    table and column. Nulls in a non-null column raise too, unless `allow_nulls`: then
    the table keeps nullable fields so validation can report the offending rows.
    """
    extra = [n for n in table.column_names if n not in schema.names]
    if extra and not drop_extra:
        raise ValidationFailed(
            f"table {schema.name}: unexpected columns {extra}; remove them or add them to "
            f"schemas/{schema.name}.py."
        )
    arrays = []
    for col in schema.columns:
        if col.name not in table.column_names:
            if not col.nullable:
                raise ValidationFailed(
                    f"table {schema.name}: required column {col.name!r} is missing; "
                    f"the stage must produce it (see schemas/{schema.name}.py)."
                )
            arrays.append(pa.nulls(table.num_rows, col.type))
            continue
        arrays.append(_cast_column(table[col.name], col, schema.name, not allow_nulls))
    relaxed = pa.schema([f.with_nullable(True) for f in schema.arrow_schema()])
    out = pa.Table.from_arrays(arrays, schema=relaxed)
    return (out if allow_nulls else strict_table(out, schema)), extra


def strict_table(table: pa.Table, schema: TableSchema) -> pa.Table:
    """Attach the exact contract schema (non-null flags, descriptions) to a conformed table."""
    return table.cast(schema.arrow_schema())


def _cast_column(
    values: pa.ChunkedArray, col: Column, table_name: str, check_nulls: bool
) -> pa.ChunkedArray:
    try:
        cast = values.cast(col.type) if values.type != col.type else values
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ValidationFailed(
            f"table {table_name}: column {col.name!r} has type {values.type}, which does not "
            f"cast to {col.type} ({err}); fix the stage output."
        ) from None
    if check_nulls and not col.nullable and cast.null_count:
        raise ValidationFailed(
            f"table {table_name}: column {col.name!r} is declared non-null but has "
            f"{cast.null_count} null values; fix the stage output."
        )
    return cast


def type_label(dtype: pa.DataType) -> str:
    """A short readable type for the dataset card (`list<struct<fact_id, ...>>` spelled out)."""
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"list<{type_label(dtype.value_type)}>"
    if pa.types.is_struct(dtype):
        inner = ", ".join(f"{f.name}: {type_label(f.type)}" for f in dtype)
        return f"struct<{inner}>"
    return str(dtype)


def _constraints(col: Column) -> str:
    parts = []
    if col.unique:
        parts.append("unique")
    if col.allowed:
        parts.append("one of " + ", ".join(f"`{v}`" for v in col.allowed))
    if col.min is not None or col.max is not None:
        parts.append(f"range [{_num(col.min)}, {_num(col.max)}]")
    if col.regex:
        parts.append(f"matches `{col.regex}`")
    if col.length:
        parts.append(f"length [{_num(col.length[0])}, {_num(col.length[1])}]")
    if col.references:
        scoped = f" (same `{col.scope}`)" if col.scope else ""
        parts.append(f"references `{col.references}`{scoped}")
    return "; ".join(parts)


def _num(value: float | None) -> str:
    if value is None:
        return "…"
    return str(int(value)) if float(value).is_integer() else str(value)


def column_table_markdown(schema: TableSchema) -> str:
    """The dataset card's column table: name, type, nullability, description, constraints."""
    lines = [
        "| column | type | nullable | description | constraints |",
        "|---|---|---|---|---|",
    ]
    for col in schema.columns:
        cells = [
            f"`{col.name}`",
            f"`{type_label(col.type)}`",
            "yes" if col.nullable else "no",
            col.description,
            _constraints(col),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    for rule in schema.rules:
        lines.append(f"\nRule `{rule.name}`: {rule.description}")
    return "\n".join(lines)
