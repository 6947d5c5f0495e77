"""Exemplar rotation across shards: generations, each shard's own exemplars, the next pool."""

from __future__ import annotations

import pyarrow as pa
import pytest

from personafoundry.config import ConverseConfig
from personafoundry.converse import ConverseResult
from personafoundry.exemplar_pool import (
    EXEMPLAR_SCHEMA,
    generation_pool,
    shard_exemplars,
    shard_generations,
)  # fmt: skip


@pytest.mark.parametrize(
    ("shards", "sizes"),
    [(0, []), (1, [1]), (2, [1, 1]), (3, [1, 2]), (4, [1, 3]), (5, [1, 3, 1]),
     (62, [1, 3, 12, 46])],
)  # fmt: skip
def test_generations_start_with_one_shard_and_grow_fourfold(shards, sizes) -> None:
    plan = shard_generations(shards)
    assert [len(g) for g in plan] == sizes
    assert [n for g in plan for n in g] == list(range(shards))


def exemplar(eid: str, score: float | None, source: str = "run") -> dict:
    return {"exemplar_id": eid, "source": source, "scenario": f"scene {eid}", "score": score,
            "turns": [{"speaker": "Ann", "text": f"hello from {eid}"}]}  # fmt: skip


def test_a_shard_keeps_only_its_own_accepted_exemplars() -> None:
    accepted = pa.table({"conversation_id": ["conv-b", "conv-c"]})  # only ids are read
    pool = [exemplar("conv-a", 4.5), exemplar("conv-b", 4.0), exemplar("ex-1", None, "hand")]
    result = ConverseResult(accepted, accepted, accepted, {}, pool)
    own = shard_exemplars(result)
    assert own.schema == EXEMPLAR_SCHEMA
    assert own.column("exemplar_id").to_pylist() == ["conv-b"]  # conv-a came from earlier


def test_generation_pool_puts_the_best_earlier_exemplars_before_hand_written_ones() -> None:
    earlier = pa.Table.from_pylist(
        [exemplar("conv-b", 3.0), exemplar("conv-a", 4.5), exemplar("conv-c", 3.0)],
        schema=EXEMPLAR_SCHEMA,
    )
    seeds = [exemplar("ex-1", None, "hand-written"), exemplar("ex-2", None, "hand-written")]
    cfg = ConverseConfig(exemplar_pool=4)
    pool = generation_pool(earlier, cfg, seeds)
    assert [e["exemplar_id"] for e in pool] == ["conv-a", "conv-b", "conv-c", "ex-1"]
    assert generation_pool(None, cfg, seeds) == seeds
