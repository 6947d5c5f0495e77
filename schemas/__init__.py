"""Table contracts, one module per table; the single source for Arrow schemas, validation
suites and the dataset card's column tables.

`SCHEMA_VERSION` is recorded in every release manifest. Bump the major version when a
column is removed, renamed or retyped, the minor version when one is added or an
expectation tightened, the patch version for descriptions.
"""

from __future__ import annotations

from personafoundry.schema import TableSchema
from schemas import conversations, documents, duplicates, personas, probes, reviews

SCHEMA_VERSION = "1.1.0"

TABLES: dict[str, TableSchema] = {
    m.SCHEMA.name: m.SCHEMA
    for m in (personas, conversations, documents, probes, reviews, duplicates)
}


def get_schema(table: str) -> TableSchema:
    """The contract of `table`; a `KeyError` names the known tables."""
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"no schema for table {table!r}; known: {sorted(TABLES)}") from None
