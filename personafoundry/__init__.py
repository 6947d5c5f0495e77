"""personafoundry: census-calibrated synthetic persona datasets with generator-critic LLM loops."""

from __future__ import annotations

__version__ = "0.1.0"
