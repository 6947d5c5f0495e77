"""A smaller version of the README demo on the real embedded model, through the CLI.

Real model (llama.cpp server started by the run), real Prefect (ephemeral server), real
Parquet release, real DuckDB query. Slow: marked `embedded`; CI runs it too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from personafoundry.release import query_release

pytestmark = pytest.mark.embedded

TINY = [
    "personas.census_count=3",
    "personas.max_rounds=3",
    "converse.per_persona=1",
    "converse.max_rounds=1",
    "documents.per_persona=1",
    "documents.max_rounds=1",
    'release.name="demo-test"',
]


@pytest.mark.timeout(1800)
def test_tiny_demo_runs_end_to_end_on_the_embedded_model(tmp_path: Path):
    sets = [arg for item in [*TINY, f'output_dir="{tmp_path}"'] for arg in ("--set", item)]
    cmd = [sys.executable, "-c", "from personafoundry.cli import main; main()", "run", *sets]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1750)
    assert result.returncode == 0, result.stderr[-3000:]
    release = tmp_path / "releases" / "demo-test" / "0.1.0"
    manifest = json.loads((release / "manifest.json").read_text())
    assert "DuckDB" in result.stdout and str(release) in result.stdout
    tokens = manifest["run"]["tokens"]
    assert sum(row["completion_tokens"] for row in tokens) > 0  # real calls were paid
    assert {m["model"] for m in manifest["run"]["models"].values()} == {
        "qwen2.5-coder-0.5b-instruct"
    }
    # Every table is there (empty when the 0.5B model got nothing past the critics, which
    # happens: acceptance is reported in the issue notes, not asserted here).
    for table in ("personas", "conversations", "documents", "probes", "duplicates"):
        query_release(release, f"SELECT count(*) FROM {table}")
    kinds = query_release(release, "SELECT DISTINCT item_kind FROM reviews").column(0)
    assert "persona" in kinds.to_pylist()  # every persona attempt was judged and recorded
    assert manifest["tables"]["reviews"]["rows"] > 0
