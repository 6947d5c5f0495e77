"""The test server itself, driven by the real `openai` client and raw HTTP/sockets."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal

import aiohttp
import openai
import pytest
from llm_server import LlmServer, Reply, ValueBuilder
from pydantic import BaseModel, Field

pytestmark = pytest.mark.timeout(60)


class Fact(BaseModel):
    fact_id: str = Field(min_length=3)
    category: Literal["work", "family", "health"]
    statement: str


class Persona(BaseModel):
    name: str
    age: int = Field(ge=18, le=90)
    score: float = Field(ge=1, le=5)
    ratio: float = Field(gt=0, lt=1)
    retired: bool
    nickname: str | None = None
    narrative: str = Field(min_length=40)
    facts: list[Fact] = Field(min_length=2, max_length=4)
    tags: list[str] = Field(default_factory=list, max_length=2)
    extras: dict[str, int] = Field(default_factory=dict)


class Node(BaseModel):
    label: str
    children: list[Node] = Field(default_factory=list)


def client(server: LlmServer, timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=timeout)


def response_format(dialect: str, schema: dict[str, Any]) -> dict[str, Any]:
    if dialect == "openai":
        return {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": schema, "strict": False},
        }
    return {"type": "json_object", "schema": schema}


def chat(server: LlmServer, text: str = "hi", timeout: float = 5.0, **kwargs: Any) -> Any:
    messages = [{"role": "user", "content": text}]
    with client(server, timeout) as api:
        return api.chat.completions.create(model="test-model", messages=messages, **kwargs)


def post_raw(server: LlmServer, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def test_models_endpoint_lists_the_configured_model(llm_server: LlmServer) -> None:
    with client(llm_server) as api:
        assert [m.id for m in api.models.list()] == ["test-model"]


@pytest.mark.parametrize("dialect", ["openai", "llamacpp"])
def test_default_reply_validates_against_the_requested_schema(
    llm_server: LlmServer, dialect: str
) -> None:
    fmt = response_format(dialect, Persona.model_json_schema())
    for i in range(5):
        completion = chat(llm_server, f"persona {i}", response_format=fmt)
        persona = Persona.model_validate_json(completion.choices[0].message.content)
        assert 2 <= len(persona.facts) <= 4
        assert completion.choices[0].finish_reason == "stop"
        usage = completion.usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert llm_server.requests[0]["response_format"] == fmt


def test_default_reply_is_deterministic_per_request_and_varies_across_requests(
    llm_server: LlmServer,
) -> None:
    fmt = response_format("openai", Persona.model_json_schema())
    first = chat(llm_server, "alpha", response_format=fmt).choices[0].message.content
    again = chat(llm_server, "alpha", response_format=fmt).choices[0].message.content
    other = chat(llm_server, "beta", response_format=fmt).choices[0].message.content
    assert first == again
    assert json.loads(first)["narrative"] != json.loads(other)["narrative"]


def test_reply_without_schema_is_text_and_json_object_without_schema_is_an_object(
    llm_server: LlmServer,
) -> None:
    text = chat(llm_server, "tell me").choices[0].message.content
    assert text.endswith(".") and len(text.split()) >= 8
    reply = chat(llm_server, "json", response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_value_builder_handles_recursion_bounds_and_formats() -> None:
    tree = Node.model_json_schema()
    for seed in range(20):
        Node.model_validate(ValueBuilder(tree, random.Random(seed)).build(tree))
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "kind": {"const": "receipt"},
            "n": {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5},
            "neg": {"type": "integer", "maximum": -10},
            "short": {"type": "string", "maxLength": 4},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}]},
            "maybe": {"type": ["string", "null"], "minLength": 30},
        },
    }
    value = ValueBuilder(schema, random.Random(1)).build(schema)
    assert value["when"].startswith("2024-") and value["when"].endswith("Z")
    assert value["kind"] == "receipt" and value["n"] == 4 and value["neg"] <= -10
    assert len(value["short"]) <= 4 and len(value["maybe"]) >= 30
    assert isinstance(value["pair"][0], int) and isinstance(value["pair"][1], bool)


def test_scripted_replies_are_consumed_in_order_then_default_resumes(
    llm_server: LlmServer,
) -> None:
    llm_server.script([{"content": "exact"}, {"json": {"a": [1, 2]}}, Reply(content="third")])
    contents = [chat(llm_server, str(i)).choices[0].message.content for i in range(4)]
    assert contents[:3] == ["exact", '{"a": [1, 2]}', "third"]
    assert contents[3] not in contents[:3]
    assert llm_server.pending_script() == 0
    assert [r.outcome for r in llm_server.log] == ["scripted"] * 3 + ["default"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
        (400, openai.BadRequestError),
    ],
)
def test_scripted_status_codes_reach_the_client(
    llm_server: LlmServer, status: int, error: type[Exception]
) -> None:
    llm_server.script([{"status": status}])
    with pytest.raises(error) as info:
        chat(llm_server)
    assert info.value.status_code == status


def test_429_carries_retry_after_headers(llm_server: LlmServer) -> None:
    llm_server.script([{"status": 429, "retry_after": 0.2}])
    status, headers, body = post_raw(llm_server, {"model": "m", "messages": []})
    assert status == 429
    assert headers["Retry-After"] == "0.2" and headers["retry-after-ms"] == "200"
    assert json.loads(body)["error"]["type"] == "rate_limit_exceeded"


def test_reset_closes_the_connection_without_a_response(llm_server: LlmServer) -> None:
    llm_server.script([{"reset": True}, {"reset": True}])
    with pytest.raises(openai.APIConnectionError):
        chat(llm_server)
    with socket.create_connection(("127.0.0.1", llm_server.port), timeout=5) as sock:
        body = b'{"messages": []}'
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n" + body)
        try:
            received = sock.recv(1024)
        except ConnectionResetError:
            received = b""
    assert received == b""
    assert llm_server.outcomes()["reset"] == 2


def test_hang_outlasts_a_short_client_timeout(llm_server: LlmServer) -> None:
    llm_server.script([{"hang": True}])
    with pytest.raises(openai.APITimeoutError):
        chat(llm_server, timeout=0.3)
    assert chat(llm_server).choices[0].message.content  # the server still answers others


def test_delay_then_default_reply(llm_server: LlmServer) -> None:
    llm_server.script([{"delay": 0.05}])
    assert chat(llm_server).choices[0].message.content
    assert llm_server.outcomes() == {"default": 1}


def test_truncated_reply_is_cut_json_with_finish_reason_length(llm_server: LlmServer) -> None:
    llm_server.script([{"truncate": True}])
    fmt = response_format("openai", Persona.model_json_schema())
    completion = chat(llm_server, response_format=fmt)
    assert completion.choices[0].finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(completion.choices[0].message.content)


def test_malformed_body_is_served_raw_and_breaks_the_client(llm_server: LlmServer) -> None:
    llm_server.script([{"body": "{not json"}, {"body": "{not json"}])
    status, _, body = post_raw(llm_server, {"model": "m", "messages": []})
    assert (status, body) == (200, b"{not json")
    with pytest.raises((json.JSONDecodeError, openai.APIError)):
        chat(llm_server)


def test_invalid_request_body_is_a_400(llm_server: LlmServer) -> None:
    request = urllib.request.Request(f"{llm_server.base_url}/chat/completions", data=b"{oops")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    info.value.close()
    assert info.value.code == 400
    assert llm_server.requests == []


def test_unknown_reply_keys_are_rejected(llm_server: LlmServer) -> None:
    with pytest.raises(ValueError, match="statuss"):
        llm_server.script([{"statuss": 500}])


def test_responder_answers_from_the_request(llm_server: LlmServer) -> None:
    def responder(payload: dict[str, Any]) -> dict[str, Any] | None:
        text = payload["messages"][-1]["content"]
        return {"json": {"score": 4}} if text.startswith("critic") else None

    llm_server.responder = responder
    assert chat(llm_server, "critic: rate this").choices[0].message.content == '{"score": 4}'
    assert chat(llm_server, "write a story").choices[0].message.content != '{"score": 4}'


def test_responder_errors_become_500_and_are_recorded(llm_server: LlmServer) -> None:
    llm_server.responder = lambda payload: 1 / 0
    with pytest.raises(openai.InternalServerError):
        chat(llm_server)
    assert "ZeroDivisionError" in llm_server.errors[0]
    llm_server.errors.clear()  # the fixture fails tests that leave responder errors behind


def test_random_faults_follow_their_seed(llm_server: LlmServer) -> None:
    def outcomes(seed: int) -> list[str]:
        llm_server.clear()
        llm_server.faults(rate_500=0.3, rate_429=0.3, seed=seed)
        for i in range(20):
            post_raw(llm_server, {"messages": [{"role": "user", "content": str(i)}]})
        return [r.outcome for r in llm_server.log]

    first = outcomes(7)
    assert first == outcomes(7)
    assert {"status_500", "status_429", "default"} <= set(first)
    llm_server.faults()
    assert post_raw(llm_server, {"messages": []})[0] == 200


def test_recording_counts_identical_payloads_as_duplicates(llm_server: LlmServer) -> None:
    for text in ["a", "b", "a", "a"]:
        chat(llm_server, text, temperature=0)
    assert [p["messages"][0]["content"] for p in llm_server.requests] == ["a", "b", "a", "a"]
    assert [r.index for r in llm_server.log] == [0, 1, 2, 3]
    assert llm_server.count_duplicates() == 2
    chat(llm_server, "a", temperature=0.5)  # different parameters: not a duplicate
    assert llm_server.count_duplicates() == 2


def test_many_concurrent_requests_are_in_flight_at_once() -> None:
    count = 200
    server = LlmServer(latency=60.0).start()
    statuses: list[int] = []

    async def fire() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(i: int) -> int:
                payload = {"messages": [{"role": "user", "content": str(i)}]}
                async with session.post(f"{server.base_url}/chat/completions", json=payload) as r:
                    return r.status

            statuses.extend(await asyncio.gather(*(one(i) for i in range(count))))

    thread = threading.Thread(target=asyncio.run, args=(fire(),))
    thread.start()
    try:
        assert server.wait_for_requests(count, timeout=30)
        assert server.in_flight == count
    finally:
        server.stop()  # releases every waiting request with a 503
        thread.join(timeout=30)
    assert statuses == [503] * count
    assert server.max_in_flight == count


def test_standalone_mode_prints_base_url_and_serves() -> None:
    script = Path(__file__).with_name("llm_server.py")
    command = [sys.executable, str(script), "--latency", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            base_url = json.loads(proc.stdout.readline())["base_url"]
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            with urllib.request.urlopen(f"{base_url}/models", timeout=5) as resp:
                assert json.load(resp)["data"][0]["id"] == "test-model"
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_llm_config_points_both_endpoints_at_the_server(
    llm_server: LlmServer, make_llm_config: Any, tmp_path: Path
) -> None:
    cfg = make_llm_config({"llm": {"critic": {"model": "critic-model"}}, "seed": 3})
    assert cfg.llm.generator.base_url == cfg.llm.critic.base_url == llm_server.base_url
    assert (cfg.llm.generator.model, cfg.llm.critic.model) == ("test-model", "critic-model")
    assert cfg.llm.critic.timeout_s == 2 and cfg.llm.critic.temperature == 0.0
    assert cfg.output_dir == str(tmp_path / "outputs") and cfg.seed == 3


def test_in_flight_per_second_ends_on_spans_that_stalled_a_float_step() -> None:
    """A span found to stall the old loop (its step rounded to 0 at a second's edge)."""
    origin, start, end = 16339.996778806397, 16385.866138080994, 16386.88879332771

    server = LlmServer()  # not started: only its record of spans is used
    server._spans.extend([(origin, origin + 0.5), (start, end)])
    seconds = server.in_flight_per_second()
    assert len(seconds) == int(end - origin) + 1
    assert sum(seconds) == pytest.approx(0.5 + (end - start), abs=0.2)  # rounded per second
