"""The census-conformance gate: do the census-sourced personas match the census they claim?

Only rows with `source == "census"` are gated: seed personas describe whoever the seed
file describes and are not a sample of the population.

Decisions:
- The gate takes a `calibrate` callable (default: `personafoundry.calibration.
  calibration_report`, which returns a report with `.to_json()`) so it is testable on
  its own and does not depend on the report's exact layout: every number under a key
  containing `tvd` (per attribute and two-way tables such as age x education) is
  compared with `census_tvd_max`; `vintage`, `tables` and `sources` are copied into the
  manifest record.
- With fewer than `census_min_rows` census personas a TVD is mostly sampling noise, so
  the gate is recorded as skipped rather than passed or failed.
- A config that declares the sample conditioned/reweighted (`conditioned = true`) turns
  a failure into a recorded waiver: the manifest says so, the release goes ahead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from personafoundry.checks import CheckResult
from personafoundry.config import ValidateConfig

Calibrate = Callable[[pa.Table], Any]


def _collect_tvds(node: Any, path: str = "") -> dict[str, float]:
    """Every number under a key containing `tvd`, keyed by its dotted path in the report."""
    found: dict[str, float] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if "tvd" in str(key).lower() and isinstance(value, (int, float)):
                found[sub] = float(value)
            elif "tvd" in str(key).lower() and isinstance(value, dict):
                found.update(
                    {
                        f"{sub}.{k}": float(v)
                        for k, v in value.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)
                    }
                )
            else:
                found.update(_collect_tvds(value, sub))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.update(_collect_tvds(value, f"{path}[{i}]"))
    return found


def _default_calibrate() -> Calibrate | None:
    try:
        from personafoundry.calibration import calibration_report
    except ImportError:
        return None
    return calibration_report


def census_gate(
    personas: pa.Table, cfg: ValidateConfig, calibrate: Calibrate | None = None
) -> tuple[CheckResult, dict[str, Any]]:
    """Compare census-sourced personas with the census tables their calibration report names.

    Returns the gate's `CheckResult` and the record for the manifest: status
    (`passed`/`failed`/`waived`/`skipped`), TVDs, threshold, census vintage and tables.
    """
    census = personas.filter(pc.equal(personas["source"], "census"))
    record: dict[str, Any] = {"census_rows": census.num_rows, "tvd_max": cfg.census_tvd_max}
    calibrate = calibrate or _default_calibrate()
    if census.num_rows == 0 or calibrate is None:
        why = "no census personas" if census.num_rows == 0 else "calibration module unavailable"
        record.update(status="skipped", note=why)
        return CheckResult("personas", "census_conformance", "census", True, note=why), record
    report = calibrate(census)
    data = report.to_json() if hasattr(report, "to_json") else report
    data = json.loads(data) if isinstance(data, (str, bytes)) else data
    tvds = _collect_tvds(data)
    over = {k: v for k, v in tvds.items() if v > cfg.census_tvd_max}
    record.update({k: data[k] for k in ("vintage", "tables", "sources") if k in data})
    record["tvd"] = tvds
    if census.num_rows < cfg.census_min_rows:
        status, note = "skipped", f"{census.num_rows} census personas < census_min_rows"
    elif over and cfg.conditioned:
        status, note = "waived", f"{len(over)} TVDs over threshold; sample declared conditioned"
    elif over:
        status, note = "failed", f"{len(over)} TVDs over {cfg.census_tvd_max}"
    else:
        status, note = "passed", f"max TVD {max(tvds.values(), default=0.0):.3f}"
    record.update(status=status, note=note, over=over)
    examples = [{"tvd": k, "value": round(v, 4)} for k, v in sorted(over.items())][:10]
    result = CheckResult(
        "personas",
        "census_conformance",
        "census",
        status != "failed",
        "source",
        {"tvd_max": cfg.census_tvd_max, "conditioned": cfg.conditioned},
        len(over),
        len(tvds),
        examples,
        note,
    )
    return result, record
