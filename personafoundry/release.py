"""Cut, list, resolve and verify immutable, versioned releases.

Layout of `<root>/<name>/<version>/`:
    data/<table>.parquet     one file per table, zstd, row groups of ~`row_group_bytes`
    validation/results.json  every check (GE raw results included) + census gate record
    validation/summary.md    the same, readable
    views.sql                `CREATE VIEW` per table with paths relative to the release
    README.md                dataset card with Hugging Face YAML front matter
    report.json, report.html the dataset report (`personafoundry.report`), report/*.png plots
    manifest.json            rows, SHA-256 of every other file, schema version, config, run
    SHA256SUMS               `sha256sum -c` compatible, manifest included

Decisions:
- Validate first, write second: a release that fails its contracts never reaches disk.
  A report computed earlier (the pipeline's validate stage) is reused instead only when it
  passed on exactly the tables being released under the same settings: its fingerprint
  (`validate.fingerprint_tables`) is recomputed from the tables given here, never trusted.
  The manifest says which happened (`validation.reused`).
- Written into a hidden temp folder next to the target and published with one
  `os.rename`. Renaming onto an existing non-empty folder fails atomically on POSIX,
  so of two concurrent cuts of one version exactly one wins; the loser gets
  `ReleaseExistsError` and its temp folder is removed. Nothing is ever overwritten.
- Names are lowercase `[a-z0-9._-]` starting alphanumeric, versions semantic
  (`X.Y.Z` with optional `-prerelease`), so neither can escape `<root>/<name>/`.
- Secrets never enter a manifest: keys that look like credentials are redacted and
  credentials embedded in URLs are stripped (`sanitize`).
- The parent version defaults to the highest existing version below the new one.
- The dataset report is computed from the temp folder's own Parquet files after the
  tables and validation results are written, and before the card (which links its
  plots), the manifest and the rename, so it is checksummed like every other file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.parquet as pq

import personafoundry
from personafoundry.calibration import CalibrationReport
from personafoundry.card import release_metrics, render_card
from personafoundry.catalog import (
    MANIFEST,
    SUMS,
    VERSION_RE,
    connect_release,
    diff_releases,
    existing_versions,
    list_releases,
    query_release,
    resolve_release,
    sha256_file,
    verify_release,
    version_key,
)
from personafoundry.config import PersonasConfig, ReleaseConfig, ValidateConfig
from personafoundry.errors import PersonaFoundryError, ReleaseExistsError
from personafoundry.report import REPORT_DIR, REPORT_HTML, REPORT_JSON, write_report
from personafoundry.validate import Calibrate, ValidationReport, reuse_report, validate_tables
from schemas import SCHEMA_VERSION, TABLES

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
SECRET_KEY_RE = re.compile(
    r"api_?key|secret|password|passwd|authorization|bearer|^token$", re.IGNORECASE
)
__all__ = [  # the read side lives in `catalog`; callers may import it from here
    "ReleaseResult",
    "check_name_version",
    "connect_release",
    "cut_release",
    "diff_releases",
    "existing_versions",
    "list_releases",
    "query_release",
    "resolve_release",
    "sanitize",
    "verify_release",
]


@dataclass(frozen=True)
class ReleaseResult:
    """A published release: where it is, its manifest and the validation report."""

    path: Path
    manifest: dict[str, Any]
    report: ValidationReport = field(repr=False)
    stats: dict[str, int] = field(default_factory=dict)


def check_name_version(name: str, version: str) -> None:
    """Refuse names and versions that are not safe path segments or not semantic versions."""
    if not NAME_RE.match(name):
        raise PersonaFoundryError(
            f"release name {name!r} is invalid; use lowercase letters, digits, '.', '_', '-', "
            "starting with a letter or digit."
        )
    if not VERSION_RE.match(version):
        raise PersonaFoundryError(
            f"release version {version!r} is not a semantic version; use X.Y.Z, e.g. 1.0.0."
        )


def sanitize(value: Any) -> Any:
    """Copy of `value` with credential-like keys redacted and URL credentials/queries removed."""
    if isinstance(value, dict):
        return {
            k: "<redacted>"
            if SECRET_KEY_RE.search(str(k)) and not str(k).endswith("_env")
            else sanitize(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return value


def write_parquet(table: pa.Table, path: Path, row_group_bytes: int) -> None:
    """zstd Parquet with row groups of about `row_group_bytes` uncompressed bytes."""
    avg = max(1, table.nbytes // max(1, table.num_rows))
    rows = max(1024, row_group_bytes // avg)
    meta = dict(table.schema.metadata or {})
    meta[b"personafoundry.schema_version"] = SCHEMA_VERSION.encode()
    pq.write_table(
        table.replace_schema_metadata(meta), path, compression="zstd", row_group_size=rows
    )


def _write_text(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(data)


def _safe_relpath(rel: str) -> Path:
    p = Path(rel)
    reserved = {MANIFEST, SUMS, "README.md", "views.sql", "data", "validation"}
    reserved |= {REPORT_DIR, REPORT_HTML, REPORT_JSON}
    if p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] in reserved:
        raise PersonaFoundryError(
            f"extra release file {rel!r} must be a relative path outside {sorted(reserved)}."
        )
    return p


def views_sql(table_names: list[str]) -> str:
    lines = ["-- Run from the release folder: duckdb -init views.sql"]
    for t in table_names:
        lines.append(
            f"CREATE OR REPLACE VIEW {t} AS SELECT * FROM read_parquet('data/{t}.parquet');"
        )
    return "\n".join(lines) + "\n"


def _section(config: dict[str, Any], key: str, model: type[Any]) -> Any:
    return model.model_validate(config.get(key) or {})


def cut_release(
    tables: dict[str, pa.Table],
    *,
    root: Path,
    name: str,
    version: str,
    config: dict[str, Any],
    run_info: dict[str, Any],
    extra_files: dict[str, bytes | str] | None = None,
    validate_cfg: ValidateConfig | None = None,
    calibrate: Calibrate | None = None,
    validation: ValidationReport | None = None,
) -> ReleaseResult:
    """Validate `tables`, then publish them as `<root>/<name>/<version>/`, atomically.

    `config` is the run config as a dict (its `validate` and `release` sections are used
    unless `validate_cfg` is given); `run_info` carries models, endpoints and token totals.
    `validation`, a report computed earlier, replaces the validation only if it passed on
    exactly these tables under the same settings (`validate.reuse_report`).
    Raises `ValidationFailed` (nothing written) or `ReleaseExistsError`.
    """
    check_name_version(name, version)
    root = Path(root)
    final = root / name / version
    if final.exists():
        raise ReleaseExistsError(
            f"release {name} {version} already exists at {final}; bump --version."
        )
    for rel in extra_files or {}:
        _safe_relpath(rel)  # refuse a bad path before the slow validation
    vcfg = validate_cfg or _section(config, "validate", ValidateConfig)
    rcfg: ReleaseConfig = _section(config, "release", ReleaseConfig)
    started = time.perf_counter()
    personas_cfg = _section(config, "personas", PersonasConfig) if "personas" in config else None
    report = reuse_report(validation, tables, vcfg, calibrate=calibrate, personas_cfg=personas_cfg)
    reused = report is not None
    if report is None:
        if validation is not None:
            log.info("release: the given validation is not of these tables; validating again")
        report = validate_tables(tables, vcfg, calibrate=calibrate, personas_cfg=personas_cfg)
    else:
        log.info("release: reusing the validation of these tables (%s)", report.fingerprint[:12])
    report.raise_for_failures()
    validated = time.perf_counter()
    earlier = [v for v in existing_versions(root, name) if version_key(v) < version_key(version)]
    parent = rcfg.parent_version or (earlier[-1] if earlier else None)
    tmp = root / name / f".tmp-{version}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    timing: dict[str, int] = {}
    try:
        manifest = _write_release(
            tmp,
            report,
            name,
            version,
            parent,
            config,
            run_info,
            extra_files or {},
            rcfg.row_group_bytes,
            timing,
            reused,
        )
        _publish(tmp, final, name, version)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    rows = {t: m["rows"] for t, m in manifest["tables"].items()}
    log.info("release: %s %s published at %s rows=%s", name, version, final, rows)
    timing = {
        "validation_reused": int(reused),
        "validate_ms": round((validated - started) * 1000),
        "write_ms": round((time.perf_counter() - validated) * 1000),
        **timing,
    }
    return ReleaseResult(
        final, manifest, report, {"files": len(manifest["files"]), **rows, **timing}
    )


def calibration_note(census: dict[str, Any]) -> str:
    """`validation/calibration.md` of a release without census personas to compare."""
    why = census.get("note") or "no census personas"
    return (
        "# Census calibration report\n\n"
        f"Not computed for this release: {why} (census gate: {census.get('status')}).\n"
        "The calibration of the skeletons the run sampled, before enrichment, is in "
        "`calibration/sampled_skeletons.md` when the release was cut from a run folder.\n"
    )


def _publish(tmp: Path, final: Path, name: str, version: str) -> None:
    try:
        os.rename(tmp, final)
    except OSError as err:  # ENOTEMPTY / EEXIST: another cut won the race
        raise ReleaseExistsError(
            f"release {name} {version} already exists at {final} (published concurrently); "
            "bump --version."
        ) from err


def _write_release(
    tmp: Path,
    report: ValidationReport,
    name: str,
    version: str,
    parent: str | None,
    config: dict[str, Any],
    run_info: dict[str, Any],
    extra_files: dict[str, bytes | str],
    row_group_bytes: int,
    timing: dict[str, int],
    reused: bool,
) -> dict[str, Any]:
    names = [t for t in TABLES if t in report.tables]
    (tmp / "data").mkdir()
    for t in names:
        write_parquet(report.tables[t], tmp / "data" / f"{t}.parquet", row_group_bytes)
    _write_text(
        tmp / "validation" / "results.json", json.dumps(report.to_json(), indent=1, default=str)
    )
    _write_text(tmp / "validation" / "summary.md", report.to_markdown())
    if "report" in report.census:
        calibration = json.dumps(report.census["report"], indent=1, default=str)
        _write_text(tmp / "validation" / "calibration.json", calibration)
        markdown = CalibrationReport(report.census["report"]).to_markdown()
        _write_text(tmp / "validation" / "calibration.md", markdown)
    else:  # no census personas (none accepted, or seeds only): say so instead of omitting it
        _write_text(tmp / "validation" / "calibration.md", calibration_note(report.census))
    _write_text(tmp / "views.sql", views_sql(names))
    for rel, content in extra_files.items():
        _write_text(tmp / _safe_relpath(rel), content)
    clean_config = sanitize(config)
    census = {k: v for k, v in report.census.items() if k != "report"}
    context = {"name": name, "version": version, "config": clean_config,
               "run": sanitize(run_info), "census": census}  # fmt: skip
    started = time.perf_counter()
    dataset_report = write_report(tmp, context)
    timing["report_ms"] = round((time.perf_counter() - started) * 1000)
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "parent_version": parent,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool": {"name": "personafoundry", "version": personafoundry.__version__},
        "schema_version": SCHEMA_VERSION,
        "tables": {
            t: {
                "path": f"data/{t}.parquet",
                "rows": report.tables[t].num_rows,
                "schema_fingerprint": TABLES[t].fingerprint(),
            }
            for t in names
        },
        "config": clean_config,
        "config_sha256": hashlib.sha256(
            json.dumps(clean_config, sort_keys=True, default=str).encode()
        ).hexdigest(),
        "run": sanitize(run_info),
        "validation": {
            "passed": report.passed,
            **report.stats,
            "fingerprint": report.fingerprint,
            "reused": reused,
        },
        "census": census,
        "metrics": release_metrics(report.tables, report.census),
        "report": {
            **{k: dataset_report[k] for k in ("html", "json", "plots")},
            "highlights": dataset_report.get("highlights", []),
        },
    }
    _write_text(tmp / "README.md", render_card(manifest))
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    manifest["files"] = {
        p.relative_to(tmp).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in files
    }
    _write_text(tmp / MANIFEST, json.dumps(manifest, indent=1, default=str) + "\n")
    sums = {
        **{k: v["sha256"] for k, v in manifest["files"].items()},
        MANIFEST: sha256_file(tmp / MANIFEST),
    }
    _write_text(tmp / SUMS, "".join(f"{h}  {p}\n" for p, h in sorted(sums.items())))
    return manifest
