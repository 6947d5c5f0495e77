"""`run --estimate` prices a run from a preview against the test server."""

from __future__ import annotations

from personafoundry.estimate import estimate_run, planned_items


def test_estimate_scales_preview_tokens_by_planned_items(llm_server, make_llm_config):
    cfg = make_llm_config(
        {
            "personas": {"census_count": 20},
            "converse": {"per_persona": 1, "max_rounds": 1},
            "documents": {"per_persona": 2, "max_rounds": 1},
            "llm": {
                "prices": {"test-model": {"prompt_per_1k": 1.0, "completion_per_1k": 1.0}},
                "budget": {"max_tokens": 10},
            },
        }
    )
    assert planned_items(cfg) == {"personas": 20, "conversations": 10, "documents": 40}
    out = estimate_run(cfg)
    personas = out["stages"]["personas"]
    assert personas["planned_items"] == 20 and personas["tokens_per_item"] > 0
    assert abs(personas["tokens"] - personas["tokens_per_item"] * 20) <= 20  # per-item rounding
    assert out["total_tokens"] == sum(s["tokens"] for s in out["stages"].values())
    assert out["total_usd"] > 0 and out["within_budget"] is False
    paid = len(llm_server.requests)
    again = estimate_run(cfg)  # the preview is cached: the same figures, nothing paid
    assert len(llm_server.requests) == paid
    assert again["total_tokens"] == out["total_tokens"]


def test_planned_conversations_follow_the_target_when_one_is_set(make_llm_config):
    per_pair = make_llm_config({"personas": {"census_count": 10}, "converse": {"per_persona": 2}})
    assert planned_items(per_pair)["conversations"] == 10
    target = make_llm_config({"personas": {"census_count": 10}, "converse": {"target": 3}})
    assert planned_items(target)["conversations"] == 3
