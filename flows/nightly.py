"""The scheduled generation run: one dated run per night with its own seed and version.

Decisions:
- A nightly deployment has static parameters, but each night must produce new data and
  a new release (versions are immutable). The run's date (the flow run's scheduled start,
  or `date` when given) becomes the seed, the run id (`nightly-YYYY-MM-DD`) and the patch
  number of the release version (`MAJOR.MINOR.YYYYMMDD`), so a night that crashed resumes
  its own run when rerun, and two nights never collide.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from flows.pipeline import pipeline_flow
from personafoundry.config import RunConfig, build_config


def run_day(date: str | None = None) -> str:
    """`date`, else the flow run's scheduled start day (UTC), else today."""
    if date:
        return date
    from prefect.runtime import flow_run

    start = flow_run.scheduled_start_time or datetime.now(UTC)
    return start.astimezone(UTC).strftime("%Y-%m-%d")


def dated_config(cfg: RunConfig, day: str) -> RunConfig:
    """`cfg` with the seed, run id and release patch version of `day` (YYYY-MM-DD)."""
    stamp = day.replace("-", "")
    major, minor, _ = cfg.release.version.split(".")
    data = cfg.model_dump(mode="json", by_alias=True)
    data["seed"] = int(stamp)
    data["run_id"] = f"nightly-{day}"
    data["release"]["version"] = f"{major}.{minor}.{stamp}"
    data["release"]["parent_version"] = None
    return build_config(data, f"nightly {day}")


@flow(name="personafoundry-nightly")
def nightly_flow(cfg: RunConfig, date: str | None = None) -> dict:
    """Generate and release one dated dataset version (see the module docstring)."""
    return pipeline_flow(dated_config(cfg, run_day(date)))
