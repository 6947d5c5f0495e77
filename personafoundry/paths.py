"""Where the project's shipped inputs and outputs live.

Decision: personafoundry runs from its checkout (the Makefile installs it editable),
so `seeds/` and `schemas/` are read next to the package rather than copied into a
wheel. `PERSONAFOUNDRY_HOME` moves the user cache (model file, response cache).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = PROJECT_ROOT / "seeds"
CONFIGS_DIR = PROJECT_ROOT / "configs"


def cache_home() -> Path:
    """User cache directory for the model file (not the run outputs)."""
    env = os.environ.get("PERSONAFOUNDRY_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "personafoundry"
