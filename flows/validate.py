"""Validate stage: the run's final tables against their contracts, before the release.

Decision (validating once): a failure here stops the run with a readable
`validate-summary` artifact and `validation.json` in the run folder, which also carries
the report's fingerprint of the tables it checked. The pipeline's release flow reads that
file back and `cut_release` reuses it only if the tables it is about to publish still
have that fingerprint (`personafoundry.validate.reuse_report`); a table changed in
between is validated again. Passing the report object from flow to flow would make it a
Prefect parameter, which must be JSON; the run folder already holds it. On the SMALL run
of `tests/pipeline_runs.py` (2 shared cores at load ~4) the second pass took 1.2 s, the
reuse check (read the tables, fingerprint, conform) 0.05 s; at the release benchmark's
scale a pass is 23.5 s (README), the fingerprint an estimated 0.4 s (its `fingerprint_s`).
"""

from __future__ import annotations

import json

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.release import VALIDATION_FILE, run_tables
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.summary import validation_markdown
from personafoundry.validate import validate_tables


@flow(name="personafoundry-validate")
def validate_flow(cfg: RunConfig) -> dict:
    """Validate the run's tables; save the report and raise `ValidationFailed` on failures."""
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    report = validate_tables(run_tables(store), cfg.validate_, personas_cfg=cfg.personas)
    # key order kept (unlike `write_json`): a reused report renders like a fresh one
    store.write_text(VALIDATION_FILE, json.dumps(report.to_json(), indent=2, default=str))
    create_markdown_artifact(key="validate-summary", markdown=validation_markdown(report))
    report.raise_for_failures()  # after the artifact, so a refused run still shows why
    return report.stats
