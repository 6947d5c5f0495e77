"""Release stage: the run's final tables, published by `cut_release`.

The pipeline passes `reuse_validation=True`: the validate stage's saved report is then
reused if it was computed on exactly these tables (`cut_release` checks its fingerprint),
else they are validated here. A cut of an earlier run (the cut-release deployment)
validates from scratch by default, so checks added since that run apply.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig
from personafoundry.dedup_index import INDEX_FILE
from personafoundry.release import cut_release
from personafoundry.schema import empty_table
from personafoundry.summary import stage_markdown
from personafoundry.validate import ValidationReport
from schemas import TABLES

STAGE_TABLES = {
    "personas": ("personas_dedup", "personas"),
    "conversations": ("conversations_dedup", "conversations"),
    "documents": ("documents_dedup", "documents"),
    "probes": ("probes",),
}
REVIEW_STAGES = ("personas", "conversations", "documents")
DUPLICATE_STAGES = ("personas_dedup", "conversations_dedup", "documents_dedup")
VALIDATION_FILE = "validation.json"  # the validate stage's report, with its fingerprint


def prewarm_release_imports() -> None:
    """Import what the release needs (Great Expectations, matplotlib: about 3-5 s of CPU).

    The pipeline calls this in a background thread while the LLM stages mostly wait on the
    network, so the release, which nothing overlaps, does not pay for the imports.
    """
    import great_expectations  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401

    import personafoundry.report_plots  # noqa: F401


def run_tables(store: RunStore) -> dict:
    """The run's final tables: deduped where dedup ran, plus reviews and duplicates."""
    import pyarrow as pa

    tables = {}
    for name, stages in STAGE_TABLES.items():
        table = store.read_latest(*stages)
        if table is not None:
            tables[name] = table
    reviews = [t for s in REVIEW_STAGES if (t := store.read_part(s, "reviews")) is not None]
    if reviews:
        tables["reviews"] = pa.concat_tables(reviews, promote_options="permissive")
    dups = [t for s in DUPLICATE_STAGES if (t := store.read_part(s, "dropped")) is not None]
    if dups:
        tables["duplicates"] = pa.concat_tables(dups, promote_options="permissive")
    # A stage that accepted nothing still ships its (empty) table: every release has the
    # same views, so researchers' queries run on it and say 0 instead of failing.
    for name, schema in TABLES.items():
        tables.setdefault(name, empty_table(schema))
    return tables


RUN_CALIBRATION = {  # run folder file -> release path (`flows/personas.py` writes them)
    "calibration_sampled.json": "calibration/sampled_skeletons.json",
    "calibration_sampled.md": "calibration/sampled_skeletons.md",
}


def index_files(store: RunStore) -> dict[str, bytes]:
    """Run files shipped with the release: the dedup index (the next version dedups against
    it) and the calibration of the sampled skeletons (there even when nothing was accepted)."""
    files = {INDEX_FILE: INDEX_FILE, **RUN_CALIBRATION}
    return {rel: (store.root / name).read_bytes() for name, rel in files.items()
            if (store.root / name).exists()}  # fmt: skip


@flow(name="personafoundry-release")
def release_flow(
    cfg: RunConfig, run_info: dict | None = None, reuse_validation: bool = False
) -> str:
    """Cut `cfg.release.name`/`version` from the run's tables; returns the release path.

    `reuse_validation`: offer the run folder's `validation.json` to `cut_release`.
    """
    store = RunStore.open(cfg.output_dir, cfg.resolved_run_id())
    if run_info is None:  # a cut of an earlier run (the cut-release deployment)
        run_info = store.read_json("run_info.json") or {}
    saved = store.read_json(VALIDATION_FILE) if reuse_validation else None
    result = cut_release(
        run_tables(store),
        root=Path(cfg.output_dir) / "releases",
        name=cfg.release.name,
        version=cfg.release.version,
        config=cfg.model_dump(mode="json", by_alias=True),
        run_info={"run_id": store.run_id, "config_sha256": cfg.config_hash(), **(run_info or {})},
        extra_files=index_files(store),
        validation=ValidationReport.from_json(saved) if saved else None,
    )
    create_markdown_artifact(
        key="release-summary",
        markdown=stage_markdown("release", result.stats, None)
        + f"\nPublished at `{result.path}`.\n",
    )
    return str(result.path)
