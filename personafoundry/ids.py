"""Deterministic IDs: the same run seed and inputs always give the same ID.

IDs are a readable prefix plus 16 hex chars of a SHA-256 over the seed and the
canonical JSON of the inputs; never `uuid4()`, so reruns and resumes line up.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, the input of every hash here."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stable_hash(value: Any, length: int = 16) -> str:
    """Hex SHA-256 prefix of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


def make_id(prefix: str, seed: int, *parts: Any) -> str:
    """`<prefix>_<16 hex>` derived from the run seed and the item's inputs."""
    return f"{prefix}_{stable_hash([seed, *parts])}"
