"""The census-conformance gate: do the census-sourced personas match the census they claim?

Only rows with `source == "census"` are gated: seed personas describe whoever the seed
file describes and are not a sample of the population.

Decisions:
- The gate takes a `calibrate` callable (default: `personafoundry.calibration.
  calibration_report` with the run's `PersonasConfig`, which returns a report with
  `.to_json()`) so it is testable on its own and does not depend on the report's exact
  layout: every number under a key named `tvd` (per attribute and two-way tables such as age x education) is
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
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from personafoundry.checks import CheckResult
from personafoundry.config import PersonasConfig, ValidateConfig

Calibrate = Callable[[pa.Table], Any]


def _collect_tvds(node: Any, path: str = "") -> dict[str, float]:
    """Every number under a key named `tvd`, keyed by its dotted path in the report.

    A `tvd` dict (`{"tvd": {"age x education": 0.05}}`) contributes each of its numbers.
    Summaries such as `max_tvd` are not collected: they repeat a collected value.
    """
    found: dict[str, float] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if str(key).lower() == "tvd" and isinstance(value, dict):
                found.update({f"{sub}.{k}": float(v) for k, v in value.items() if _number(v)})
            elif str(key).lower() == "tvd" and _number(value):
                found[sub] = float(value)
            else:
                found.update(_collect_tvds(value, sub))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.update(_collect_tvds(value, f"{path}[{i}]"))
    return found


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _default_calibrate(personas_cfg: PersonasConfig | None) -> Calibrate | None:
    """`calibration_report` with the run's personas config, so conditioned samples are
    compared with the fitted model under the same conditions; None if not installed."""
    try:
        from personafoundry.calibration import calibration_report
    except ImportError:
        return None
    return partial(calibration_report, cfg=personas_cfg)


def census_gate(
    personas: pa.Table,
    cfg: ValidateConfig,
    calibrate: Calibrate | None = None,
    personas_cfg: PersonasConfig | None = None,
) -> tuple[CheckResult, dict[str, Any]]:
    """Compare census-sourced personas with the census tables their calibration report names.

    Returns the gate's `CheckResult` and the record for the manifest: status
    (`passed`/`failed`/`waived`/`skipped`), TVDs, threshold, census vintage and tables,
    and under `report` the whole calibration report (saved with the release).
    Consistency-rule violations in the report (`rule_violations_total`) fail the gate
    whatever the TVDs and `conditioned` say.
    """
    census = personas.filter(pc.equal(personas["source"], "census"))
    record: dict[str, Any] = {"census_rows": census.num_rows, "tvd_max": cfg.census_tvd_max}
    calibrate = calibrate or _default_calibrate(personas_cfg)
    if census.num_rows == 0 or calibrate is None:
        why = "no census personas" if census.num_rows == 0 else "calibration module unavailable"
        record.update(status="skipped", note=why)
        return CheckResult("personas", "census_conformance", "census", True, note=why), record
    report = calibrate(census)
    data = report.to_json() if hasattr(report, "to_json") else report
    data = json.loads(data) if isinstance(data, (str, bytes)) else data
    tvds = _collect_tvds(data)
    over = {k: v for k, v in tvds.items() if v > cfg.census_tvd_max}
    violations = int(data.get("rule_violations_total") or 0)
    record.update({k: data[k] for k in ("vintage", "tables", "sources") if k in data})
    record.update(tvd=tvds, rule_violations=violations)
    if violations:
        status, note = "failed", f"{violations} census consistency-rule violations (must be 0)"
    elif census.num_rows < cfg.census_min_rows:
        status, note = "skipped", f"{census.num_rows} census personas < census_min_rows"
    elif over and cfg.conditioned:
        status, note = "waived", f"{len(over)} TVDs over threshold; sample declared conditioned"
    elif over:
        status, note = "failed", f"{len(over)} TVDs over {cfg.census_tvd_max}"
    else:
        status, note = "passed", f"max TVD {max(tvds.values(), default=0.0):.3f}"
    record.update(status=status, note=note, over=over, report=data)
    examples = [{"tvd": k, "value": round(v, 4)} for k, v in sorted(over.items())][:10]
    result = CheckResult(
        "personas",
        "census_conformance",
        "census",
        status != "failed",
        "source",
        {"tvd_max": cfg.census_tvd_max, "conditioned": cfg.conditioned},
        len(over) + bool(violations),  # elements: each marginal's TVD, and the rule check
        len(tvds) + 1,
        examples,
        note,
    )
    return result, record
