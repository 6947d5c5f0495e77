"""The shared critic loop's `reviews` rows: every stage's rows fit `schemas/reviews.py`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from personafoundry.critic import LoopSpec, RuleExpert, Verdict, refine, review_row
from personafoundry.llm import LlmResult
from personafoundry.schema import conform_table
from schemas.reviews import SCHEMA as REVIEWS


@dataclass(frozen=True)
class CountingExpert:
    """An expert with findings beyond its score: how many words the candidate has."""

    name: str = "counter"
    deterministic: bool = True

    async def judge(self, candidate: Any, context: Any, llm: Any, *, seed: int) -> Verdict:
        n = len(str(candidate).split())
        return Verdict(self.name, 5.0, n >= 2, "ok", details={"words": n, "text": candidate})


def run_loop(drafts: list[str]) -> Any:
    async def generate(feedback: str | None, round_no: int) -> LlmResult[str]:
        return LlmResult(True, drafts[round_no - 1], None, 1, False, None)

    spec = LoopSpec(
        "persona", [RuleExpert("nonempty", lambda c, _: [] if c else ["empty"]), CountingExpert()],
        max_rounds=len(drafts), model="m", prompt_version="p/1", seed=1,
    )  # fmt: skip
    return asyncio.run(refine("per_0000000000000001", None, generate, spec, llm=None))


def test_review_rows_carry_expert_details_as_json_and_null_otherwise() -> None:
    outcome = run_loop(["hi", "hello there"])
    assert outcome.accepted and outcome.rounds == 2
    rows = outcome.reviews
    details = [(r["round"], r["expert"], r["details"]) for r in rows]
    assert details == [
        (1, "nonempty", None),
        (1, "counter", json.dumps({"text": "hi", "words": 1})),
        (2, "nonempty", None),
        (2, "counter", json.dumps({"text": "hello there", "words": 2})),
    ]
    table, extra = conform_table(pa.Table.from_pylist(rows), REVIEWS)
    assert extra == [] and table.num_rows == 4


def test_review_row_has_exactly_the_contract_columns() -> None:
    row = review_row("rev_0000000000000001", "doc_0000000000000001", "document", 1,
                     Verdict("judge", None, True, "no verdict", "timeout"), False, "m", "v")  # fmt: skip
    assert list(row) == REVIEWS.names
    assert row["details"] is None and row["error"] == "timeout"
