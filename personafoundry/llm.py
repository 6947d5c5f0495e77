"""The LLM gateway: the only way personafoundry calls a model.

Decisions:
- `openai.AsyncOpenAI` against any OpenAI-compatible `base_url`, with the aiohttp
  backend (`openai[aiohttp]`): measured about half the client CPU per request of the
  default httpx stack (see benchmarks/gateway.py).
- Our own retry loop (the SDK's is switched off with `max_retries=0`) so that every
  retry is counted, the backoff is configurable per endpoint (tests use milliseconds),
  `Retry-After` is honoured, and a run-level stop can be decided: exponential backoff
  with full jitter on 429, 408, 409, 5xx, timeouts, connection errors and unreadable
  bodies. After `breaker_failures` consecutive calls that failed every retry the
  endpoint is declared down and `EndpointError` stops the run (resumable).
- Structured output speaks two dialects: OpenAI's `json_schema` and the llama.cpp
  server's `json_object` + `schema` (which rejects the former with a 500). Every reply
  is validated with pydantic plus an optional semantic `check`, because grammars do not
  enforce numeric ranges. An invalid reply is re-asked with the error fed back, then
  returned as a failed `LlmResult` with its reason; it never raises out of a stage.
- Only `BudgetExceeded` and `EndpointError` propagate: they stop a run, cleanly and
  resumably; everything else about a single call is data.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from personafoundry.cache import CachedReply, ResponseCache, cache_key
from personafoundry.config import LlmEndpoint, Price
from personafoundry.errors import EndpointError, ReplyError
from personafoundry.usage import BudgetGuard, UsageBook, price_of

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
HEARTBEAT_S = 20.0
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint for one role; `identity` keys the cache (stable across ports)."""

    role: str
    base_url: str
    model: str
    dialect: str
    identity: str
    settings: LlmEndpoint
    api_key: str = field(default="not-needed", repr=False)


@dataclass(frozen=True)
class LlmResult(Generic[T]):
    """Outcome of one logical call: a validated value, or the reason it failed."""

    ok: bool
    value: T | None
    error: str | None
    attempts: int
    cached: bool
    content: str | None


class _TransportFailed(Exception):
    """All transport retries of one request failed."""


def response_format(schema: dict[str, Any], name: str, dialect: str) -> dict[str, Any]:
    """The `response_format` payload for `dialect` (`openai` or `llamacpp`)."""
    if dialect == "llamacpp":
        return {"type": "json_object", "schema": inline_refs(schema)}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}


@functools.lru_cache(maxsize=256)
def _format_for(schema: type[BaseModel], dialect: str) -> dict[str, Any]:
    """Schema generation costs more CPU than sending a request: do it once per model."""
    return response_format(schema.model_json_schema(), schema.__name__, dialect)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace pydantic's `$ref`s by their `$defs` bodies (llama.cpp grammars need no refs)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].split("/")[-1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def parse_json_reply(content: str, schema: type[M], check: Callable[[M], None] | None) -> M:
    """Parse and validate a reply; raises `ReplyError` with a message fit to feed back."""
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        # strict=False: small models put raw newlines inside JSON strings; that is content,
        # not a reason to pay for another round.
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as err:
        raise ReplyError(f"reply is not valid JSON ({err.msg} at char {err.pos})") from None
    try:
        value = schema.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in err.errors()[:5]
        )
        raise ReplyError(f"reply does not match the schema: {problems}") from None
    if check is not None:
        try:
            check(value)
        except (ReplyError, ValueError) as err:
            raise ReplyError(str(err)) from None
    return value


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA store (about 60 ms, on the
    event loop), and every shard opens its own client."""
    import httpx2

    return httpx2.create_ssl_context()


class LlmClient:
    """Async gateway over resolved endpoints with cache, retries, limits and accounting.

    Open it inside the event loop that uses it (`async with LlmClient(...) as llm`).
    """

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        cache: ResponseCache,
        *,
        run_id: str,
        prices: dict[str, Price] | None = None,
        budget: BudgetGuard | None = None,
        limits: dict[str, Any] | None = None,
    ) -> None:
        """`limits`: base_url -> async context manager that replaces this client's own
        semaphore, so that several clients (concurrent shards) share one in-flight cap."""
        self.endpoints = endpoints
        self.cache = cache
        self.run_id = run_id
        self.prices = prices or {}
        self.budget = budget
        self.usage = UsageBook()
        self._clients: dict[str, openai.AsyncOpenAI] = {}
        self._shared_limits = limits or {}
        self._limits: dict[str, Any] = {}
        self._consecutive_failures: dict[str, int] = {}
        self._last_heartbeat = time.monotonic()

    async def __aenter__(self) -> LlmClient:
        limits: dict[str, int] = {}
        for ep in self.endpoints.values():
            if ep.base_url not in self._clients:
                self._clients[ep.base_url] = openai.AsyncOpenAI(
                    base_url=ep.base_url,
                    api_key=ep.api_key,
                    max_retries=0,
                    timeout=ep.settings.timeout_s,
                    http_client=openai.DefaultAioHttpClient(
                        timeout=ep.settings.timeout_s, verify=_tls_context()
                    ),
                )
            # Roles sharing an endpoint share one limit: the smallest one configured.
            limits[ep.base_url] = min(ep.settings.max_concurrency, limits.get(ep.base_url, 1 << 30))
        self._limits = {
            url: self._shared_limits.get(url) or asyncio.Semaphore(n) for url, n in limits.items()
        }
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def stats(self) -> dict[str, dict[str, float]]:
        return self.usage.as_dict()

    async def complete_json(
        self,
        role: str,
        messages: list[dict[str, str]],
        schema: type[M],
        *,
        seed: int,
        check: Callable[[M], None] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> LlmResult[M]:
        """Ask for JSON matching `schema`; re-ask with the error on an invalid reply."""
        ep = self.endpoints[role]
        fmt = _format_for(schema, ep.dialect)
        convo = list(messages)
        all_cached, content = True, None
        attempts = ep.settings.reply_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                reply, cached = await self._send(ep, convo, fmt, seed, temperature, max_tokens)
            except _TransportFailed as err:
                self.usage.for_role(role, ep.model).failed_calls += 1
                return LlmResult(False, None, f"transport: {err}", attempt, False, content)
            all_cached &= cached
            content = reply.content
            try:
                value = parse_json_reply(content, schema, check)
                return LlmResult(True, value, None, attempt, all_cached, content)
            except ReplyError as err:
                self.usage.for_role(role, ep.model).invalid_replies += 1
                reason = str(err)
                if reply.finish_reason == "length":
                    reason += " (the reply was cut off at max_tokens; be shorter)"
                log.debug("%s: invalid reply (attempt %d): %s", role, attempt, reason)
                convo = [
                    *messages,
                    {"role": "assistant", "content": content[:2000]},
                    {
                        "role": "user",
                        "content": f"Your reply was invalid: {reason}. "
                        "Reply again with only the corrected JSON object.",
                    },
                ]
        self.usage.for_role(role, ep.model).failed_calls += 1
        return LlmResult(False, None, f"invalid reply: {reason}", attempts, all_cached, content)

    async def complete_text(
        self,
        role: str,
        messages: list[dict[str, str]],
        *,
        seed: int,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> LlmResult[str]:
        """Plain text completion (no schema), with the same cache, retries and accounting."""
        ep = self.endpoints[role]
        try:
            reply, cached = await self._send(ep, messages, None, seed, temperature, max_tokens)
        except _TransportFailed as err:
            self.usage.for_role(role, ep.model).failed_calls += 1
            return LlmResult(False, None, f"transport: {err}", 1, False, None)
        return LlmResult(True, reply.content, None, 1, cached, reply.content)

    async def _send(
        self,
        ep: Endpoint,
        messages: list[dict[str, str]],
        fmt: dict[str, Any] | None,
        seed: int,
        temperature: float | None,
        max_tokens: int | None,
    ) -> tuple[CachedReply, bool]:
        params: dict[str, Any] = {
            "temperature": ep.settings.temperature if temperature is None else temperature,
            "max_tokens": max_tokens or ep.settings.max_tokens,
            "seed": seed,
        }
        if fmt is not None:
            params["response_format"] = fmt
        key = cache_key(
            {"endpoint": ep.identity, "model": ep.model, "messages": messages, **params}
        )
        usage = self.usage.for_role(ep.role, ep.model)
        hit = self.cache.get(key)
        if hit is not None:
            usage.cache_hits += 1
            usage.cached_tokens += hit.prompt_tokens + hit.completion_tokens
            return hit, True
        if self.budget is not None:
            self.budget.check()
        async with self._limits[ep.base_url]:
            reply = await self._post_with_retries(ep, messages, params)
        cost = price_of(self.prices, ep.model, reply.prompt_tokens, reply.completion_tokens)
        usage.requests += 1
        usage.prompt_tokens += reply.prompt_tokens
        usage.completion_tokens += reply.completion_tokens
        usage.cost_usd += cost
        if self.budget is not None:
            self.budget.charge(reply.prompt_tokens + reply.completion_tokens, cost)
        self.cache.put(key, reply, model=ep.model, role=ep.role, run_id=self.run_id, cost_usd=cost)
        self._heartbeat()
        return reply, False

    def _heartbeat(self) -> None:
        """One progress line every HEARTBEAT_S while calls complete (long shards stay visible)."""
        now = time.monotonic()
        if now - self._last_heartbeat < HEARTBEAT_S:
            return
        self._last_heartbeat = now
        t = self.usage.totals()
        log.info(
            "llm: %d calls paid, %d cached, %d completion tokens, %d retries, %d failed so far",
            t["requests"],
            t["cache_hits"],
            t["completion_tokens"],
            t["retries"],
            t["failed_calls"],
        )

    async def _post_with_retries(
        self, ep: Endpoint, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> CachedReply:
        client, s = self._clients[ep.base_url], ep.settings
        usage = self.usage.for_role(ep.role, ep.model)
        last_error = "no attempt made"
        for attempt in range(s.max_retries + 1):
            if attempt:
                usage.retries += 1
            try:
                # `client.post` is what `chat.completions.create` calls after its recursive
                # TypedDict transform of the body, which costs ~2 ms CPU per request
                # (profiled: more than the HTTP exchange itself); our body is already plain
                # JSON, so the wire payload is identical.
                resp = await client.post(
                    "/chat/completions",
                    body={"model": ep.model, "messages": messages, **params},
                    cast_to=ChatCompletion,
                )
                choice = resp.choices[0]
                tokens = resp.usage
                self._consecutive_failures[ep.base_url] = 0
                return CachedReply(
                    content=choice.message.content or "",
                    finish_reason=choice.finish_reason,
                    prompt_tokens=tokens.prompt_tokens if tokens else 0,
                    completion_tokens=tokens.completion_tokens if tokens else 0,
                )
            except openai.APIStatusError as err:
                if err.status_code not in RETRYABLE_STATUS:
                    last_error = f"HTTP {err.status_code}: {str(err)[:200]}"
                    break
                last_error = f"HTTP {err.status_code}"
                delay = _retry_after(err) or _backoff(attempt, s.backoff_base_s, s.backoff_max_s)
            except (openai.APIError, ValueError, AttributeError, IndexError) as err:
                last_error = f"{type(err).__name__}: {str(err)[:200]}"
                delay = _backoff(attempt, s.backoff_base_s, s.backoff_max_s)
            if attempt < s.max_retries:
                await asyncio.sleep(delay)
        usage.transport_failures += 1
        failures = self._consecutive_failures.get(ep.base_url, 0) + 1
        self._consecutive_failures[ep.base_url] = failures
        if failures >= s.breaker_failures:
            raise EndpointError(
                f"endpoint {ep.base_url} ({ep.role}) failed {failures} calls in a row, each after "
                f"{s.max_retries} retries (last: {last_error}); the run stopped and can be "
                "resumed once the endpoint is back."
            )
        raise _TransportFailed(f"{last_error} after {s.max_retries} retries")


def _retry_after(err: openai.APIStatusError) -> float | None:
    value = err.response.headers.get("retry-after") if err.response is not None else None
    try:
        return min(float(value), 120.0) if value is not None else None
    except ValueError:
        return None


def _backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's recommendation)."""
    return random.uniform(0, min(cap, base * 2**attempt))
