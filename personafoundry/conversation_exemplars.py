"""Few-shot exemplars of the conversations stage: the hand-written seed pool and its rotation.

Decisions:
- The hand-written exemplars in `seeds/exemplars/conversations.jsonl` seed the pool; after
  each wave the best accepted conversations of the run (mean judge score, else mean of
  every score) rotate in ahead of the hand-written ones, as in Synthetic-Persona-Chat.
- Each conversation of a wave sees `exemplars_shown` consecutive pool entries starting at
  its own position in the wave, so a wave does not show one exemplar to every pair.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from personafoundry.conversation_critics import Dialogue, Draft
from personafoundry.conversation_judges import JUDGES
from personafoundry.critic import Verdict
from personafoundry.paths import SEEDS_DIR

EXEMPLARS_PATH = SEEDS_DIR / "exemplars" / "conversations.jsonl"


def load_exemplars(path: Path = EXEMPLARS_PATH) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def exemplar_of(d: Dialogue, draft: Draft, verdicts: list[Verdict]) -> dict[str, Any]:
    """An accepted conversation as a pool entry, scored by its judges' mean."""
    judged = [v.score for v in verdicts if v.expert in JUDGES and v.score is not None]
    scores = judged or [v.score for v in verdicts if v.score is not None]
    return {
        "exemplar_id": d.conversation_id,
        "source": "run",
        "scenario": d.scenario,
        "score": sum(scores) / len(scores) if scores else None,
        "turns": [{"speaker": d.speaker(pid).label, "text": t} for pid, t in draft.turns],
    }


def rotate_exemplars(
    pool: list[dict[str, Any]], new: list[dict[str, Any]], size: int
) -> list[dict[str, Any]]:
    """Best accepted run conversations first (by mean judge score), then hand-written ones."""
    run = sorted(
        [e for e in pool + new if e.get("source") == "run"],
        key=lambda e: (-(e.get("score") or 0.0), e["exemplar_id"]),
    )
    seeds = [e for e in pool if e.get("source") != "run"]
    return (run + seeds)[:size]


def shown_exemplars(
    pool: list[dict[str, Any]], wave_len: int, shown: int
) -> list[list[dict[str, Any]]]:
    """The exemplars each conversation of a wave is shown."""
    k = min(shown, len(pool))
    return [[pool[(i + j) % len(pool)] for j in range(k)] for i in range(wave_len)]
