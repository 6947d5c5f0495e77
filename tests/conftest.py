"""Shared fixtures: the OpenAI-compatible test server, a RunConfig pointing at it, Prefect.

Decisions:
- Prefect telemetry is switched off at import, before anything imports prefect: offline it
  fails noisily.
- `prefect_harness` is session-scoped but not autouse: starting the temporary Prefect server
  costs seconds and most tests never touch a flow, so flow tests request it by name.
- `llm_server` fails the test at teardown when a `responder` raised, because a broken
  responder otherwise shows up only as a retried 500.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"

from llm_server import LlmServer  # tests/ is on sys.path under pytest

from personafoundry.config import RunConfig, build_config

TEST_MODEL = "test-model"
PREFECT_STARTUP_TIMEOUT_S = 120


@pytest.fixture
def llm_server() -> Iterator[LlmServer]:
    """A fresh server per test on 127.0.0.1:<free port>, no latency, no faults."""
    server = LlmServer(models=[TEST_MODEL]).start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.errors, f"test server responder failed: {server.errors}"


def _endpoint(base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "model": TEST_MODEL,
        "dialect": "openai",
        "timeout_s": 2,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        **extra,
    }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def make_llm_config(llm_server: LlmServer, tmp_path: Path) -> Callable[..., RunConfig]:
    """Factory: `make_llm_config({"converse": {"max_rounds": 1}})` deep-merges overrides."""

    def make(overrides: dict[str, Any] | None = None) -> RunConfig:
        data = {
            "output_dir": str(tmp_path / "outputs"),
            "llm": {
                "generator": _endpoint(llm_server.base_url),
                # keep the critic's own defaults (deterministic, short replies)
                "critic": _endpoint(llm_server.base_url, temperature=0.0, max_tokens=300),
            },
        }
        return build_config(_merge(data, overrides or {}), "tests/conftest.py")

    return make


@pytest.fixture
def llm_config(make_llm_config: Callable[..., RunConfig]) -> RunConfig:
    """RunConfig whose generator and critic endpoints point at `llm_server`."""
    return make_llm_config()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect server and database for the session; request it by name."""
    from prefect.testing.utilities import prefect_test_harness

    # the default 30 s startup timeout is too tight on 2 busy cores (22 s measured)
    with prefect_test_harness(server_startup_timeout=PREFECT_STARTUP_TIMEOUT_S):
        yield
