"""A conversation target split over batches of shards, and the stage's restated counters."""

from __future__ import annotations

import pyarrow as pa
import pytest

from personafoundry.config import ConverseConfig
from personafoundry.conversation_batches import (
    batch_inputs,
    batch_targets,
    shard_shares,
    stage_totals,
)  # fmt: skip
from personafoundry.conversation_stats import shortfall_markdown
from personafoundry.exemplar_pool import EXEMPLAR_SCHEMA


@pytest.mark.parametrize(
    ("missing", "pairs", "shares"),
    [
        (5, [2, 2, 1], [2, 2, 1]),  # the whole batch is needed
        (9, [2, 2, 1], [2, 2, 1]),  # more missing than pairs: every pair is worked
        (3, [4, 4, 2], [2, 1, 0]),  # 1.2, 1.2, 0.6 -> 1, 1, 0; remainder to the first
        (4, [4, 4, 4], [2, 1, 1]),
        (7, [4, 4, 4, 2], [2, 2, 2, 1]),  # exact proportions, no remainder
        (6, [1, 4, 4, 1], [1, 3, 2, 0]),  # floors 0, 2, 2, 0; remainder 2 to the first
        (0, [4, 4], [0, 0]),  # the target is met: nothing more is generated
        (-2, [4, 4], [0, 0]),
        (3, [], []),
    ],
)
def test_a_batch_splits_what_is_missing_in_proportion_to_pairs(missing, pairs, shares) -> None:
    got = shard_shares(missing, pairs)
    assert got == shares
    assert sum(got) == min(max(missing, 0), sum(pairs))
    assert all(0 <= s <= n for s, n in zip(got, pairs, strict=True))


def test_later_batches_are_given_what_the_earlier_ones_left_missing() -> None:
    earlier = [{"accepted": 2, "requested": 2}, {"accepted": 1}, {"accepted": 3}]
    assert batch_targets(10, earlier, [4, 4, 4]) == [2, 1, 1]  # 4 missing
    assert batch_targets(6, earlier, [4, 4]) == [0, 0]  # met
    assert batch_targets(None, earlier, [4, 4]) == [None, None]  # one per pair, as before


def test_every_shard_of_a_batch_gets_the_same_pool_and_its_own_share() -> None:
    earlier = pa.Table.from_pylist(
        [{"exemplar_id": "conv-a", "source": "run", "scenario": "s", "score": 4.0,
          "turns": [{"speaker": "Ann", "text": "hi"}]}], schema=EXEMPLAR_SCHEMA,
    )  # fmt: skip
    cfg = ConverseConfig(target=5)
    given = batch_inputs(cfg, earlier, [{"accepted": 1}], [2, 2, 1])
    assert [g["target"] for g in given] == [2, 2, 0]  # 4 missing: 1.6, 1.6, 0.8
    assert all(g["exemplars"] == given[0]["exemplars"] for g in given)
    assert given[0]["exemplars"][0]["exemplar_id"] == "conv-a"


def summed(**over: float) -> dict:
    """Shard counters added up as `flows.shards.sum_stats` does (shares as `requested`)."""
    base = {"pairs": 9, "started": 8, "unused_pairs": 1, "requested": 11, "accepted": 5,
            "shortfall": 6, "stopped.attempt_cap": 3, "stopped.unknown_persona": 0,
            "stopped.out_of_pairs": 6, "usage": {}}  # fmt: skip
    return base | over


def test_stage_totals_restate_requested_and_shortfall_for_the_target() -> None:
    cfg = ConverseConfig(target=6, max_rounds=2)
    stats = stage_totals(summed(), cfg, {"pairs_wanted": 9, "per_persona": 3})
    assert (stats["requested"], stats["accepted"], stats["shortfall"]) == (6, 5, 1)
    assert stats["stopped.out_of_pairs"] == 1 and stats["stopped.attempt_cap"] == 3
    assert stats["pairing.pairs_wanted"] == 9 and stats["pairing.per_persona"] == 3
    note = shortfall_markdown(stats, cfg)
    assert note.startswith("\n**Short by 1 of 6 requested**: attempt cap (1 x 2 rounds)")
    assert "1 reserve pairs unused by shards that met their share" in note
    met = stage_totals(summed(accepted=6), cfg)
    assert (met["requested"], met["shortfall"], met["stopped.out_of_pairs"]) == (6, 0, 0)
    assert shortfall_markdown(met, cfg) == ""


def test_stage_totals_without_a_target_keep_the_summed_counters() -> None:
    stats = summed(requested=9, shortfall=4, **{"stopped.out_of_pairs": 0})
    assert stage_totals(stats, ConverseConfig()) == stats
    empty = stage_totals({"usage": {}, "shards": 0}, ConverseConfig())  # no pairs, no shard
    assert (empty["requested"], empty["accepted"], empty["shortfall"]) == (0, 0, 0)
