"""Progress lines of a sharded stage: items done / total, rate and ETA, resume-aware."""

from __future__ import annotations

import re

from personafoundry.progress import StageProgress, brief

LINE = re.compile(
    r"^(?P<stage>\w+): shard (?P<shard>\d+)/(?P<shards>\d+)(?: [\w.=]+)* \| "
    r"(?P<done>\d+)/(?P<total>\d+) items \((?P<pct>\d+)%\), (?P<rate>[\d.]+) items/s, "
    r"(?:ETA (?P<eta>\d+)s|done in \d+s)$"
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_count_items_in_finish_order_with_rate_and_eta() -> None:
    clock = Clock()
    progress = StageProgress("documents", total_items=10, total_shards=3, clock=clock)
    progress.start()
    clock.now += 2.0
    first = progress.finish(2, 2, {"accepted": 2, "rejected": 0})  # the short last shard first
    assert first == (
        "documents: shard 3/3 accepted=2 rejected=0 | 2/10 items (20%), 1.00 items/s, ETA 8s"
    )
    clock.now += 2.0
    second = progress.finish(0, 4, {"accepted": 3.0})
    assert LINE.match(second)["done"] == "6" and LINE.match(second)["eta"] == "3"
    clock.now += 2.0
    last = progress.finish(1, 4, {})
    assert last.endswith("10/10 items (100%), 1.67 items/s, done in 6s"), last


def test_skipped_shards_count_as_done_but_not_towards_the_rate() -> None:
    clock = Clock()
    progress = StageProgress("personas", total_items=8, total_shards=4, clock=clock)
    progress.skip(2)
    progress.skip(2)
    progress.start()
    clock.now += 4.0
    line = LINE.match(progress.finish(3, 2, {"accepted": 2}))
    assert (line["done"], line["total"], line["rate"], line["eta"]) == ("6", "8", "0.50", "4")


def test_brief_shows_headline_counters_as_integers() -> None:
    assert brief({"accepted": 41.0, "rejected": 7, "cached": 30, "usage": {}}) == (
        "accepted=41 rejected=7 cached=30"
    )
    assert brief({"accepted": 1234567}) == "accepted=1234567"
