"""Validate stage: the run's final tables against their contracts, before the release.

Decision (validating twice): `cut_release` validates the tables it publishes itself and
takes no report from outside (`personafoundry/release.py`), so a pipeline run validates
twice: here, where a failure stops the run with a readable `validate-summary` artifact and
`validation.json` in the run folder, and again inside the release. Measured on the SMALL
run of `tests/pipeline_runs.py` (2 shared cores): 1.0 s for this pass and 0.9 s for a second
one, in a 16.6 s pipeline against the instant test server; at the release benchmark's
scale (100k conversations, README) a pass is 23.5 s, in a run that spends hours on LLM
calls. Cheap enough to keep one code path; a `report=` argument of `cut_release` (same
tables, same config) would remove the second pass.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.release import run_tables
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.summary import validation_markdown
from personafoundry.validate import validate_tables


@flow(name="personafoundry-validate")
def validate_flow(cfg: RunConfig) -> dict:
    """Validate the run's tables; save the report and raise `ValidationFailed` on failures."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    report = validate_tables(run_tables(store), cfg.validate_, personas_cfg=cfg.personas)
    store.write_json("validation.json", report.to_json())
    create_markdown_artifact(key="validate-summary", markdown=validation_markdown(report))
    report.raise_for_failures()  # after the artifact, so a refused run still shows why
    return report.stats
