"""Shared pieces of the end-to-end tests: a small config, release readers, one clean run.

The uninterrupted reference run (`clean_run`) happens once per session and is shared by
the pipeline, resume and fault tests, which compare their own releases with it: the
plausible responder is deterministic and IDs derive from the run seed and inputs, so an
interrupted, resumed or fault-ridden run must end with the very same rows.

Decisions:
- The reference run keeps its test server alive for the session (a daemon thread), so a
  later rerun against the same endpoint identity can prove it is served from the cache.
- Tables are compared as Python rows sorted by their ID column, every column included.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow.parquet as pq
from llm_server import LlmServer
from plausible import Plausible, schema_of

from personafoundry.cache import ResponseCache
from personafoundry.checkpoint import RunStore
from personafoundry.config import RunConfig, build_config
from personafoundry.ids import stable_hash
from personafoundry.paths import PROJECT_ROOT

MODEL = "test-model"
REJECT_RATE = 0.2  # a share of first drafts fails a critic and is revised: richer reviews
SMALL: dict[str, Any] = {
    "seed": 11,
    "shard_size": 2,
    "personas": {"census_count": 6},
    "converse": {"per_persona": 2, "max_rounds": 2, "turns_min": 4, "turns_max": 6},
    "documents": {"per_persona": 2, "max_rounds": 2},
    "validate": {"conditioned": True},  # 6 personas cannot match the census marginals
    "release": {"name": "small", "version": "1.0.0"},
}
ID_COLUMNS = {
    "personas": "persona_id", "conversations": "conversation_id", "documents": "document_id",
    "probes": "probe_id", "reviews": "review_id", "duplicates": "item_id",
}  # fmt: skip
CLI = [sys.executable, "-c", "from personafoundry.cli import main; main()"]


def endpoint(base_url: str, **extra: Any) -> dict[str, Any]:
    """A test endpoint: short timeout, millisecond backoff (as in conftest)."""
    return {
        "base_url": base_url, "model": MODEL, "dialect": "openai", "timeout_s": 2,
        "backoff_base_s": 0.01, "backoff_max_s": 0.05, "max_concurrency": 4, **extra,
    }  # fmt: skip


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def small_config(output_dir: Path, base_url: str, extra: dict[str, Any] | None = None) -> dict:
    """The SMALL run as a config dict pointing at `base_url`, writing under `output_dir`."""
    llm = {"generator": endpoint(base_url), "critic": endpoint(base_url, temperature=0.0,
                                                              max_tokens=300)}  # fmt: skip
    return merge(merge(SMALL, {"output_dir": str(output_dir), "llm": llm}), extra or {})


def write_toml(data: dict[str, Any], path: Path) -> Path:
    """A flat TOML writer for config dicts (strings, numbers, booleans, nested tables)."""

    def emit(table: dict[str, Any], prefix: str) -> list[str]:
        lines = [f"{k} = {json.dumps(v)}" for k, v in table.items() if not isinstance(v, dict)]
        for k, v in table.items():
            if isinstance(v, dict):
                lines += ["", f"[{prefix}{k}]", *emit(v, f"{prefix}{k}.")]
        return lines

    path.write_text("\n".join(emit(data, "")) + "\n", encoding="utf-8")
    return path


def release_rows(release: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table of a release as rows sorted by ID (all columns)."""
    out = {}
    for file in sorted((release / "data").glob("*.parquet")):
        rows = pq.read_table(file).to_pylist()
        key = ID_COLUMNS.get(file.stem)
        out[file.stem] = sorted(
            rows, key=lambda r: json.dumps(r.get(key) if key else r, sort_keys=True, default=str)
        )
    return out


def cache_key_of(payload: dict[str, Any], base_url: str) -> str:
    """The gateway's cache key of a request the server received (see `llm.LlmClient._send`)."""
    return stable_hash({"endpoint": base_url.rstrip("/"), **payload}, length=64)


def cli_env() -> dict[str, str]:
    """Environment for a `personafoundry` child: the session's Prefect server, our paths."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    env.pop("OPENAI_BASE_URL", None)
    return env


def schema_counts(server: LlmServer) -> Counter[str]:
    """Requests per structured-output schema name (what each stage asked)."""
    return Counter(schema_of(r)[0] for r in server.requests)


def ledger_tokens(usage: dict[str, dict[str, Any]]) -> int:
    """Tokens paid, from a pipeline summary's `usage` (role/model -> ledger row)."""
    return sum(r["prompt_tokens"] + r["completion_tokens"] for r in usage.values())


def flow_artifacts(flow_run_id: UUID, keys: tuple[str, ...]) -> dict[str, str]:
    """Artifact key -> Markdown, of the artifacts made by this flow run or its direct subflows.

    Read by flow run, not as "the newest artifact with this key": the session's Prefect
    server also holds other tests' runs of the same flows. A key made more than once in
    the run (dedup, once per table) maps to the last one.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    run_or_its_subflows = FlowRunFilter(
        operator="or_",
        id=FlowRunFilterId(any_=[flow_run_id]),
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]),  # not their subflows
    )

    async def go() -> dict[str, str]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys))),
                flow_run_filter=run_or_its_subflows,
            )
        return {a.key: str(a.data) for a in sorted(found, key=lambda a: a.created)}

    return asyncio.run(go())


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=cli_env(), cwd=PROJECT_ROOT, text=True,
                          capture_output=True, timeout=timeout, check=False)  # fmt: skip


@dataclass
class CleanRun:
    server: LlmServer
    cfg: RunConfig
    summary: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]
    requests: int
    flow_run_id: UUID | None = None  # the pipeline's Prefect flow run (in-process run only)


_CLEAN: dict[str, CleanRun] = {}


def clean_cli_run(tmp_root: Path) -> CleanRun:
    """The uninterrupted SMALL run as a `personafoundry run` child process, once per session.

    The reference for runs that are themselves child processes (same hash seed).
    """
    if "cli" not in _CLEAN:
        server = LlmServer(models=[MODEL], responder=Plausible(reject_rate=REJECT_RATE)).start()
        data = small_config(tmp_root / "outputs", server.base_url)
        cfg = build_config(data, "pipeline_runs")
        done = run_cli("run", "--config", str(write_toml(data, tmp_root / "run.toml")))
        assert done.returncode == 0, done.stderr[-3000:]
        store = RunStore.open(tmp_root / "outputs", cfg.resolved_run_id())
        cache = ResponseCache(tmp_root / "outputs" / "cache" / "responses.sqlite")
        usage = {f"{r['role']}/{r['model']}": r for r in cache.ledger(store.run_id)}
        cache.close()
        release = tmp_root / "outputs" / "releases" / "small" / "1.0.0"
        summary = {"run_id": store.run_id, "release_path": str(release), "usage": usage,
                   "stats": store.read_json("stats.json")}  # fmt: skip
        rows = release_rows(release)
        _CLEAN["cli"] = CleanRun(server, cfg, summary, rows, len(server.requests))
    return _CLEAN["cli"]


def clean_run(tmp_root: Path) -> CleanRun:
    """The uninterrupted SMALL run, once per session (needs the Prefect harness)."""
    if "run" not in _CLEAN:
        from flows.pipeline import pipeline_flow

        server = LlmServer(models=[MODEL], responder=Plausible(reject_rate=REJECT_RATE)).start()
        cfg = build_config(small_config(tmp_root / "outputs", server.base_url), "pipeline_runs")
        state = pipeline_flow(cfg, return_state=True)
        summary = state.result()
        assert not server.errors, server.errors
        rows = release_rows(Path(summary["release_path"]))
        _CLEAN["run"] = CleanRun(server, cfg, summary, rows, len(server.requests),
                                 state.state_details.flow_run_id)  # fmt: skip
    return _CLEAN["run"]
