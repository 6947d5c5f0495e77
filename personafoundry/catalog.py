"""Read side of releases: find, list, verify, open with DuckDB, and diff published versions.

Decisions:
- DuckDB opens a release as an in-memory database with one view per table over the
  release's Parquet files, so nothing is copied and the release folder stays immutable.
  `views.sql` in each release holds the same views with relative paths for the DuckDB
  CLI (`duckdb -init views.sql` run from the release folder).
- `diff_releases` compares by primary key (from `schemas/`), Parquet schemas and the
  manifest's `metrics`, so it works across schema versions and never loads a table into
  Python.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from personafoundry.errors import PersonaFoundryError
from schemas import TABLES

VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z][0-9A-Za-z.-]*)?$")
MANIFEST, SUMS = "manifest.json", "SHA256SUMS"

# Research questions a release answers in one query; the README, the benchmark and the
# tests run these, so they stay correct as the schemas evolve.
EXAMPLE_QUERIES = {
    "critic pass rate by expert and round": (
        "SELECT item_kind, expert, round, count(*) AS reviews, "
        "round(avg(passed::INT), 3) AS pass_rate FROM reviews GROUP BY ALL ORDER BY ALL"
    ),
    "documents per fact category": (
        "WITH facts AS (SELECT unnest(facts, recursive := true) FROM personas), "
        "revealed AS (SELECT document_id, unnest(revealed_fact_ids) AS fact_id FROM documents) "
        "SELECT category, count(DISTINCT document_id) AS documents FROM revealed "
        "JOIN facts USING (fact_id) GROUP BY category ORDER BY documents DESC, category"
    ),
    "conversations by state pair": (
        "SELECT least(a.state, b.state) AS state_1, greatest(a.state, b.state) AS state_2, "
        "count(*) AS conversations FROM conversations c "
        "JOIN personas a ON a.persona_id = c.persona_ids[1] "
        "JOIN personas b ON b.persona_id = c.persona_ids[2] "
        "GROUP BY ALL ORDER BY conversations DESC, state_1, state_2 LIMIT 10"
    ),
    "probe evidence by kind and document type": (  # `outdated`: temporal probes' old value
        "WITH e AS (SELECT kind, 'answer' AS supports, unnest(evidence_document_ids) AS "
        "document_id FROM probes UNION ALL SELECT kind, 'outdated_answer', "
        "unnest(outdated_evidence_document_ids) FROM probes) "
        "SELECT e.kind, e.supports, d.doc_type, count(*) AS evidence FROM e "
        "JOIN documents d USING (document_id) "
        "GROUP BY ALL ORDER BY evidence DESC, e.kind, e.supports, d.doc_type"
    ),
    "mean conversation critic score by age band": (
        "SELECT (p.age // 10) * 10 AS age_band, count(*) AS conversations, "
        "round(avg(list_avg(list_transform(c.critic_scores, lambda s: s.score))), 2) AS mean_score "
        "FROM conversations c JOIN personas p ON p.persona_id = c.persona_ids[1] "
        "GROUP BY ALL ORDER BY age_band"
    ),
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_release(root: Path, spec: str) -> Path:
    """`NAME` (latest version) or `NAME@VERSION` to the release folder; errors say what exists."""
    name, _, version = spec.partition("@")
    versions = existing_versions(root, name)
    if not versions:
        raise PersonaFoundryError(f"no release named {name!r} under {root}; cut one first.")
    version = version or versions[-1]
    if version not in versions:
        raise PersonaFoundryError(
            f"release {name} has no version {version!r} under {root}; known: {versions}."
        )
    return Path(root) / name / version


def existing_versions(root: Path, name: str) -> list[str]:
    """Published versions of `name`, oldest first (temp folders and strays ignored)."""
    base = Path(root) / name
    if not base.is_dir():
        return []
    found = [
        p.name for p in base.iterdir() if VERSION_RE.match(p.name) and (p / MANIFEST).is_file()
    ]
    return sorted(found, key=version_key)


def version_key(version: str) -> tuple[int, int, int, int, str]:
    """Semantic-version sort key: a pre-release sorts before its release."""
    m = VERSION_RE.match(version)
    if not m:
        return (-1, -1, -1, -1, version)
    pre = m.group(4) or ""
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, pre)


@dataclass(frozen=True)
class VerifyResult:
    """Differences between a release folder and its manifest; `ok` when there are none."""

    path: Path
    checked: int
    changed: list[str]
    missing: list[str]
    extra: list[str]

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra)


def verify_release(path: Path) -> VerifyResult:
    """Re-hash every file against `manifest.json` (and the manifest against `SHA256SUMS`)."""
    path = Path(path)
    manifest = read_manifest(path)
    expected = {k: v["sha256"] for k, v in manifest["files"].items()}
    sums_path = path / SUMS
    if sums_path.is_file():
        for line in sums_path.read_text(encoding="utf-8").splitlines():
            digest, _, rel = line.partition("  ")
            if rel == MANIFEST:
                expected[MANIFEST] = digest
    changed, missing = [], []
    for rel, digest in sorted(expected.items()):
        file = path / rel
        if not file.is_file():
            missing.append(rel)
        elif sha256_file(file) != digest:
            changed.append(rel)
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    extra = sorted(present - set(expected) - {MANIFEST, SUMS})
    return VerifyResult(path, len(expected), changed, missing, extra)


def list_releases(root: Path) -> list[dict[str, Any]]:
    """One summary per published release under `root`: name, version, created, rows."""
    out = []
    root = Path(root)
    for base in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for version in existing_versions(root, base.name):
            manifest = json.loads((base / version / MANIFEST).read_text(encoding="utf-8"))
            rows = {t: m["rows"] for t, m in manifest["tables"].items()}
            out.append(
                {
                    "name": base.name,
                    "version": version,
                    "created_at": manifest.get("created_at"),
                    "parent_version": manifest.get("parent_version"),
                    "rows": rows,
                    "path": str(base / version),
                }
            )
    return out


def read_manifest(path: Path) -> dict[str, Any]:
    """The release's manifest; a clear error when `path` is not a release."""
    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise PersonaFoundryError(
            f"{Path(path) / MANIFEST}: unreadable ({err}); not a release."
        ) from None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect_release(
    path: Path, con: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (new in-memory one unless given) with a view per release table."""
    path = Path(path)
    manifest = read_manifest(path)
    con = con or duckdb.connect(":memory:")
    for table, meta in manifest["tables"].items():
        file = (path / meta["path"]).resolve()
        con.execute(
            f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM read_parquet({_literal(str(file))})'
        )
    return con


def query_release(path: Path, sql: str) -> pa.Table:
    """Run `sql` over the release's views and return the result as an Arrow table."""
    con = connect_release(path)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as err:
        raise PersonaFoundryError(f"query on {path} failed: {err}") from None
    finally:
        con.close()


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _schema_changes(a: Path, b: Path) -> dict[str, Any]:
    sa, sb = pq.read_schema(a), pq.read_schema(b)
    ta = {f.name: str(f.type) for f in sa}
    tb = {f.name: str(f.type) for f in sb}
    return {
        "added_columns": [c for c in tb if c not in ta],
        "removed_columns": [c for c in ta if c not in tb],
        "retyped": {c: [ta[c], tb[c]] for c in ta if c in tb and ta[c] != tb[c]},
    }


def diff_releases(a: Path, b: Path) -> dict[str, Any]:
    """Rows added/removed per table (by primary key), schema and metric changes from `a` to `b`."""
    ma, mb = read_manifest(a), read_manifest(b)
    con = duckdb.connect(":memory:")
    tables: dict[str, Any] = {}
    schema: dict[str, Any] = {}
    for table in dict.fromkeys([*ma["tables"], *mb["tables"]]):
        in_a, in_b = ma["tables"].get(table), mb["tables"].get(table)
        entry: dict[str, Any] = {"rows_a": in_a and in_a["rows"], "rows_b": in_b and in_b["rows"]}
        if in_a and in_b:
            fa, fb = Path(a) / in_a["path"], Path(b) / in_b["path"]
            pk = f'"{TABLES[table].primary_key}"' if table in TABLES else None
            if pk:
                anti = "SELECT count(*) FROM read_parquet({x}) WHERE {pk} NOT IN (SELECT {pk} FROM read_parquet({y}))"
                entry["added"] = con.execute(
                    anti.format(x=_literal(str(fb)), y=_literal(str(fa)), pk=pk)
                ).fetchone()[0]
                entry["removed"] = con.execute(
                    anti.format(x=_literal(str(fa)), y=_literal(str(fb)), pk=pk)
                ).fetchone()[0]
            changes = _schema_changes(fa, fb)
            if any(changes.values()):
                schema[table] = changes
        else:
            entry["status"] = "added" if in_b else "removed"
        tables[table] = entry
    con.close()
    fa, fb = _flatten(ma.get("metrics", {})), _flatten(mb.get("metrics", {}))
    metrics = {k: [fa.get(k), fb.get(k)] for k in sorted({*fa, *fb}) if fa.get(k) != fb.get(k)}
    return {
        "a": f"{ma['name']}@{ma['version']}",
        "b": f"{mb['name']}@{mb['version']}",
        "schema_version": [ma.get("schema_version"), mb.get("schema_version")],
        "tables": tables,
        "schema": schema,
        "metrics": metrics,
    }
