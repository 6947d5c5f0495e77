"""The LLM gateway against the real test server: dialects, faults, cache, accounting, budget."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from personafoundry.cache import ResponseCache
from personafoundry.config import Budget, Price, RunConfig
from personafoundry.endpoints import resolve_remote
from personafoundry.errors import BudgetExceeded, EndpointError
from personafoundry.llm import LlmClient, LlmResult, inline_refs, response_format
from personafoundry.usage import BudgetGuard


class Pet(BaseModel):
    name: str = Field(max_length=40)
    legs: int = Field(ge=0, le=8)


class Owner(BaseModel):
    owner: str
    pets: list[Pet] = Field(min_length=1, max_length=3)


MESSAGES = [{"role": "user", "content": "Describe a pet owner as JSON."}]


def endpoints_for(cfg: RunConfig) -> dict:
    return {role: resolve_remote(role, getattr(cfg.llm, role)) for role in ("generator", "critic")}


def call(
    cfg: RunConfig,
    tmp_path: Path,
    *,
    schema=Owner,
    seed=1,
    budget=None,
    prices=None,
    run_id="run-a",
    messages=MESSAGES,
    check=None,
    times=1,
) -> tuple[list[LlmResult], dict]:
    async def go():
        cache = ResponseCache(tmp_path / "cache.sqlite")
        guard = BudgetGuard(budget) if budget else None
        async with LlmClient(
            endpoints_for(cfg), cache, run_id=run_id, prices=prices, budget=guard
        ) as llm:
            results = [
                await llm.complete_json("generator", messages, schema, seed=seed + i, check=check)
                for i in range(times)
            ]
            return results, llm.stats()

    return asyncio.run(go())


def usage_of(stats: dict) -> dict:
    return stats["generator/test-model"]


def test_default_reply_is_parsed_and_validated(llm_server, llm_config, tmp_path):
    (result,), stats = call(llm_config, tmp_path)
    assert result.ok and isinstance(result.value, Owner)
    assert usage_of(stats)["requests"] == 1
    fmt = llm_server.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["title"] == "Owner"


def test_llamacpp_dialect_sends_json_object_with_inlined_schema(
    llm_server, make_llm_config, tmp_path
):
    cfg = make_llm_config({"llm": {"generator": {"dialect": "llamacpp"}}})
    (result,), _ = call(cfg, tmp_path)
    assert result.ok
    fmt = llm_server.requests[0]["response_format"]
    assert fmt["type"] == "json_object"
    assert "$ref" not in str(fmt["schema"]) and "$defs" not in fmt["schema"]


def test_inline_refs_replaces_every_ref():
    schema = inline_refs(Owner.model_json_schema())
    assert schema["properties"]["pets"]["items"]["properties"]["legs"]["maximum"] == 8
    assert response_format(Owner.model_json_schema(), "Owner", "openai")["type"] == "json_schema"


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 0.05},
        {"status": 500},
        {"status": 503},
        {"reset": True},
        {"body": "{not json"},
        {"hang": True},
    ],
    ids=["429", "500", "503", "reset", "malformed-body", "hang"],
)
def test_transport_faults_are_retried_then_succeed(llm_server, make_llm_config, tmp_path, fault):
    cfg = make_llm_config({"llm": {"generator": {"timeout_s": 0.5}}})
    llm_server.script([fault, fault])
    (result,), stats = call(cfg, tmp_path)
    assert result.ok, result.error
    assert usage_of(stats)["retries"] == 2
    assert len(llm_server.requests) == 3


def test_retry_after_is_honoured(llm_server, llm_config, tmp_path):
    llm_server.script([{"status": 429, "retry_after": 0.3}])
    call(llm_config, tmp_path)
    first, second = llm_server.log[0], llm_server.log[1]
    assert second.received_at - first.received_at >= 0.3


def test_transport_failure_after_all_retries_is_a_failed_result(
    llm_server, make_llm_config, tmp_path
):
    cfg = make_llm_config({"llm": {"generator": {"max_retries": 2}}})
    llm_server.script([{"status": 500}] * 3)
    (result,), stats = call(cfg, tmp_path)
    assert not result.ok and "HTTP 500" in result.error
    assert usage_of(stats)["transport_failures"] == 1 and usage_of(stats)["failed_calls"] == 1


def test_non_retryable_status_fails_at_once(llm_server, llm_config, tmp_path):
    llm_server.script([{"status": 400, "message": "bad request"}])
    (result,), _ = call(llm_config, tmp_path)
    assert not result.ok and "HTTP 400" in result.error
    assert len(llm_server.requests) == 1


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ({"content": "I think the owner is Ann."}, "not valid JSON"),
        ({"json": {"owner": "Ann", "pets": [{"name": "Rex", "legs": 10**15}]}}, "pets.0.legs"),
        ({"json": {"owner": "Ann"}}, "pets: Field required"),
        ({"truncate": True}, "cut off at max_tokens"),
    ],
    ids=["prose", "out-of-range", "missing-field", "truncated"],
)
def test_invalid_reply_is_re_asked_with_the_error(llm_server, llm_config, tmp_path, bad, needle):
    llm_server.script([bad])
    (result,), stats = call(llm_config, tmp_path)
    assert result.ok and result.attempts == 2
    assert usage_of(stats)["invalid_replies"] == 1
    feedback = llm_server.requests[1]["messages"][-1]["content"]
    assert needle in feedback


def test_reply_that_stays_invalid_is_a_failed_attempt_with_reason(llm_server, llm_config, tmp_path):
    llm_server.script([{"content": "nope"}] * 3)
    (result,), stats = call(llm_config, tmp_path)
    assert not result.ok and result.error.startswith("invalid reply: reply is not valid JSON")
    assert result.attempts == 3 and usage_of(stats)["failed_calls"] == 1


def test_semantic_check_failure_is_fed_back(llm_server, llm_config, tmp_path):
    def no_rex(value: Owner) -> None:
        if any(p.name == "Rex" for p in value.pets):
            raise ValueError("do not name a pet Rex")

    llm_server.script([{"json": {"owner": "A", "pets": [{"name": "Rex", "legs": 4}]}}])
    (result,), _ = call(llm_config, tmp_path, check=no_rex)
    assert result.ok and result.attempts == 2
    assert "do not name a pet Rex" in llm_server.requests[1]["messages"][-1]["content"]


def test_cache_means_a_repeated_call_is_never_paid_twice(llm_server, llm_config, tmp_path):
    (first,), _ = call(llm_config, tmp_path)
    (second,), stats = call(llm_config, tmp_path)
    assert second.cached and second.value == first.value
    assert len(llm_server.requests) == 1 and usage_of(stats)["cache_hits"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 2},
        {"messages": [{"role": "user", "content": "Describe a pet owner as JSON!"}]},
        {"schema": Pet},
    ],
    ids=["seed", "prompt", "schema"],
)
def test_changed_prompt_seed_or_schema_misses_the_cache(llm_server, llm_config, tmp_path, change):
    call(llm_config, tmp_path)
    (result,), _ = call(llm_config, tmp_path, **change)
    assert not result.cached and len(llm_server.requests) == 2


def test_api_key_is_never_stored_in_the_cache(llm_server, make_llm_config, tmp_path, monkeypatch):
    monkeypatch.setenv("PF_TEST_KEY", "sk-secret-123")
    cfg = make_llm_config({"llm": {"generator": {"api_key_env": "PF_TEST_KEY"}}})
    call(cfg, tmp_path)
    assert b"sk-secret-123" not in (tmp_path / "cache.sqlite").read_bytes()


def test_concurrency_is_bounded_per_endpoint(llm_server, make_llm_config, tmp_path):
    cfg = make_llm_config({"llm": {"generator": {"max_concurrency": 3}}})
    llm_server.latency = 0.2

    async def go():
        cache = ResponseCache(tmp_path / "c.sqlite")
        async with LlmClient(endpoints_for(cfg), cache, run_id="r") as llm:
            await asyncio.gather(
                *(llm.complete_json("generator", MESSAGES, Owner, seed=i) for i in range(9))
            )

    asyncio.run(go())
    assert llm_server.max_in_flight == 3


def test_budget_cap_stops_between_requests_and_ledger_survives(llm_server, llm_config, tmp_path):
    with pytest.raises(BudgetExceeded, match="resume it with a higher"):
        call(llm_config, tmp_path, budget=Budget(max_tokens=1), times=2)
    assert len(llm_server.requests) == 1
    cache = ResponseCache(tmp_path / "cache.sqlite")
    tokens, _ = cache.spent("run-a")
    assert tokens > 0 and cache.ledger("run-a")[0]["requests"] == 1


def test_cost_is_priced_from_the_table(llm_server, llm_config, tmp_path):
    prices = {"test-model": Price(prompt_per_1k=1.0, completion_per_1k=2.0)}
    _, stats = call(llm_config, tmp_path, prices=prices)
    usage = usage_of(stats)
    expected = usage["prompt_tokens"] / 1000 + usage["completion_tokens"] / 1000 * 2
    assert usage["cost_usd"] == pytest.approx(expected) and expected > 0


def test_endpoint_down_stops_the_run_with_a_clear_error(make_llm_config, tmp_path):
    cfg = make_llm_config(
        {
            "llm": {
                "generator": {
                    "base_url": "http://127.0.0.1:9/v1",
                    "max_retries": 1,
                    "breaker_failures": 2,
                }
            }
        }
    )
    with pytest.raises(EndpointError, match="failed 2 calls in a row"):
        call(cfg, tmp_path, times=3)
