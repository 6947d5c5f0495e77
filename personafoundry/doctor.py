"""`personafoundry doctor`: what is installed, where the model is, what answers."""

from __future__ import annotations

import importlib.metadata as md
import platform
import urllib.request
from typing import Any

from personafoundry.config import RunConfig
from personafoundry.errors import PersonaFoundryError

PACKAGES = (
    "personafoundry",
    "prefect",
    "fastapi",
    "openai",
    "pydantic",
    "pyarrow",
    "pandas",
    "duckdb",
    "great-expectations",
    "datasketch",
    "llama-cpp-python",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "NOT INSTALLED"
    return versions


def probe_endpoint(base_url: str, timeout: float = 3.0) -> str:
    """`reachable (N models)` or the reason it is not; never raises."""
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/models", timeout=timeout) as resp:
            return f"reachable (HTTP {resp.status})"
    except Exception as err:  # noqa: BLE001 - doctor reports every failure as text
        return f"NOT reachable: {type(err).__name__}: {err}"


def model_status() -> dict[str, str]:
    from personafoundry.embedded import model_path, verify_model

    try:
        info = verify_model(full=False)
    except PersonaFoundryError as err:
        return {"model file": f"{model_path()} - {err}"}
    state = "ok" if info.ok else "MISMATCH"
    return {"model file": f"{info.path} ({info.size} bytes, {state})", "model sha256": info.sha256}


def prefect_api() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return url or "ephemeral (temporary local server started per run)"


def doctor_report(cfg: RunConfig) -> dict[str, Any]:
    report: dict[str, Any] = dict(package_versions())
    report.update(model_status())
    for role in ("generator", "critic"):
        endpoint = getattr(cfg.llm, role)
        if endpoint.base_url is None:
            report[f"endpoint {role}"] = "embedded model (started on demand)"
        else:
            report[f"endpoint {role}"] = f"{endpoint.base_url} {probe_endpoint(endpoint.base_url)}"
    report["prefect api"] = prefect_api()
    return report
