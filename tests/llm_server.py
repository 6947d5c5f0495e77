"""An OpenAI-compatible HTTP server on real sockets, for tests and benchmarks.

Serves `GET /v1/models`, `POST /v1/chat/completions` (non-streaming) and `GET /stats`.
By default a chat request gets a schema-valid JSON reply built from its structured-output
schema, in either dialect: OpenAI `{"type": "json_schema", "json_schema": {"schema": ...}}`
or llama.cpp `{"type": "json_object", "schema": ...}`. Without a schema the reply is text.

Decisions:
- aiohttp.web (installed with `openai[aiohttp]`) on its own event loop in a daemon thread:
  thousands of concurrent slow requests cost one coroutine each, not one thread each, so a
  benchmark at concurrency 256 with 1 s latency measures the client, not this server.
- Generated values are deterministic given the request (seeded by a hash of the messages and
  schema) but vary across requests, so outputs look distinct to dedup and caches.
- Reply precedence per request: scripted queue item, then random fault (`faults()`), then
  `responder(payload)`, then the default reply. The fixed `latency` applies to every chat
  request; a reply's `delay` adds to it. Waits end early when the server stops.
- `hang` waits until the client goes away or the server stops; `reset` aborts the TCP
  connection with SO_LINGER 0 (an RST), so clients see a connection error, not a status.
- Everything recorded (payloads, outcomes, script queue) sits behind one lock: tests read
  it from their own thread while the loop thread writes it.

Standalone: `python tests/llm_server.py --latency 1.0` prints `{"base_url": ...}` as one
JSON line on stdout and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import signal
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Self

from aiohttp import web

VOCABULARY = (
    "river market garden letter window morning evening kitchen teacher nurse bakery harbor "
    "winter summer autumn spring bicycle library station ticket coffee invoice meeting doctor "
    "neighbor family daughter son brother sister friend weekend holiday budget rent mortgage "
    "garage tomato recipe soccer piano guitar museum hospital pharmacy school college office "
    "project deadline report email calendar birthday wedding funeral vacation airport hotel "
    "highway truck farm orchard barn chicken dog cat parrot lake mountain desert forest city "
    "village county church diner pizza noodle salad sandwich bread cheese apple orange lemon "
    "blue green red yellow quiet loud careful happy tired busy early late warm cold bright "
    "walks writes reads cooks builds fixes plans visits calls saves spends remembers worries "
    "laughs drives paints sings teaches learns repairs orders cleans gardens hikes swims"
)
WORDS = VOCABULARY.split()
LONG_FIELDS = {"narrative", "body", "text", "content", "description", "summary", "feedback"}
MAX_DEPTH = 8
_UNSET: Any = object()


@dataclass(frozen=True)
class Reply:
    """One scripted answer or fault. Dict items passed to `script()` use the same keys."""

    content: str | None = None  # exact message content
    json: Any = _UNSET  # content = json.dumps(this)
    status: int = 200  # non-200: an OpenAI-style error body
    retry_after: float | None = None  # Retry-After (+ retry-after-ms) header, seconds
    message: str | None = None  # error message for non-200 replies
    delay: float = 0.0  # extra seconds before answering
    hang: bool = False  # never answer (until the client leaves or the server stops)
    reset: bool = False  # abort the connection without a response
    body: str | None = None  # raw response body with status 200 (e.g. "{not json")
    truncate: bool = False  # cut the content in half, finish_reason "length"
    finish_reason: str | None = None

    @classmethod
    def of(cls, item: Reply | dict[str, Any] | str) -> Reply:
        """Accept a Reply, a dict of Reply fields, or a plain content string."""
        if isinstance(item, Reply):
            return item
        if isinstance(item, str):
            return cls(content=item)
        unknown = set(item) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown reply keys {sorted(unknown)}; use Reply fields")
        return cls(**item)

    def kind(self) -> str:
        for name in ("hang", "reset", "truncate"):
            if getattr(self, name):
                return name
        if self.status != 200:
            return f"status_{self.status}"
        if self.body is not None:
            return "body"
        return "scripted" if self.content is not None or self.json is not _UNSET else "default"


@dataclass
class Recorded:
    """One received chat request, in arrival order."""

    index: int
    payload: dict[str, Any]
    fingerprint: str
    outcome: str = "pending"
    received_at: float = field(default_factory=time.monotonic)


def fingerprint(payload: Any) -> str:
    """SHA-256 of the canonical JSON: equal payloads, equal fingerprints (a cache-key proxy)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def request_schema(payload: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """(wants JSON, schema or None) from either structured-output dialect."""
    fmt = payload.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return True, (fmt.get("json_schema") or {}).get("schema") or {}
    if fmt.get("type") == "json_object":
        return True, fmt.get("schema")
    return False, None


def words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


class ValueBuilder:
    """Build a value that satisfies a JSON schema (the subset pydantic emits)."""

    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root, self.rng = root, rng

    def resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def build(self, schema: dict[str, Any] | bool, name: str = "", depth: int = 0) -> Any:
        if not isinstance(schema, dict):
            return words(self.rng, 1, 3)
        if "$ref" in schema:
            return self.build(
                {**self.resolve(schema["$ref"]), **_without(schema, "$ref")}, name, depth + 1
            )
        if "allOf" in schema:
            merged: dict[str, Any] = _without(schema, "allOf")
            for part in schema["allOf"]:
                merged = {**(self.resolve(part["$ref"]) if "$ref" in part else part), **merged}
            return self.build(merged, name, depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [o for o in schema[key] if o.get("type") != "null"]
                if not options or depth > MAX_DEPTH:
                    return None
                return self.build(self.rng.choice(options), name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = (
                "object" if "properties" in schema else "array" if "items" in schema else "string"
            )
        return getattr(self, f"build_{kind}")(schema, name, depth)

    def build_object(self, schema: dict[str, Any], name: str, depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        value = {key: self.build(sub, key, depth + 1) for key, sub in props.items()}
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict):
            for _ in range(self.rng.randint(1, 2)):
                value[self.rng.choice(WORDS)] = self.build(extra, name, depth + 1)
        return value

    def build_array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        prefix = [self.build(s, name, depth + 1) for s in schema.get("prefixItems", [])]
        lo = max(schema.get("minItems", 1) - len(prefix), 0)
        hi = max(min(schema.get("maxItems", math.inf) - len(prefix), lo + 3), lo)
        if depth > MAX_DEPTH:  # recursive schemas: stop growing
            lo = hi = max(schema.get("minItems", 0) - len(prefix), 0)
        items = schema.get("items", {"type": "string"})
        return prefix + [
            self.build(items, name, depth + 1) for _ in range(self.rng.randint(lo, hi))
        ]

    def build_string(self, schema: dict[str, Any], name: str, depth: int) -> str:
        fmt = schema.get("format")
        if fmt == "date-time":
            return f"2024-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}T10:30:00Z"
        if fmt == "date":
            return f"2024-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"
        if fmt == "email":
            return f"{self.rng.choice(WORDS)}.{self.rng.choice(WORDS)}@example.com"
        text = words(self.rng, 12, 30) if name in LONG_FIELDS else words(self.rng, 3, 8)
        while len(text) < schema.get("minLength", 0):
            text += " " + words(self.rng, 3, 8)
        return text[: schema.get("maxLength", len(text))]

    def build_integer(self, schema: dict[str, Any], name: str, depth: int) -> int:
        lo, hi = _bounds(schema, 100.0)
        lo = math.floor(lo) + 1 if "exclusiveMinimum" in schema else math.ceil(lo)
        hi = math.ceil(hi) - 1 if "exclusiveMaximum" in schema else math.floor(hi)
        return self.rng.randint(lo, max(lo, hi))

    def build_number(self, schema: dict[str, Any], name: str, depth: int) -> float:
        lo, hi = _bounds(schema, 100.0)
        value = round(self.rng.uniform(lo, hi), 2)
        if not lo < value < hi:  # rounding or an exclusive bound: take the middle
            value = (lo + hi) / 2
        return value

    def build_boolean(self, schema: dict[str, Any], name: str, depth: int) -> bool:
        return self.rng.random() < 0.5

    def build_null(self, schema: dict[str, Any], name: str, depth: int) -> None:
        return None


def _bounds(schema: dict[str, Any], span: float) -> tuple[float, float]:
    """(low, high) from minimum/maximum or their exclusive forms; `span` fills a missing side."""
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    if lo is None:
        lo = 0.0 if hi is None or hi >= 0 else hi - span
    if hi is None:
        hi = lo + span
    return lo, hi


def _without(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def default_content(payload: dict[str, Any]) -> str:
    """The default reply: schema-valid JSON, a JSON object, or text; seeded by the request."""
    wants_json, schema = request_schema(payload)
    seed_text = json.dumps([payload.get("messages"), schema], sort_keys=True, default=str)
    rng = random.Random(hashlib.sha256(seed_text.encode()).digest())
    if not wants_json:
        return words(rng, 8, 20).capitalize() + "."
    if schema is None:
        return json.dumps({"text": words(rng, 8, 20)})
    return json.dumps(ValueBuilder(schema, rng).build(schema))


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _prompt_text(payload: dict[str, Any]) -> str:
    parts = []
    for msg in payload.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else msg
        parts.append(content if isinstance(content, str) else json.dumps(content))
    return "".join(parts)


class LlmServer:
    """OpenAI-compatible server on 127.0.0.1 (port 0 by default) in a background thread.

    Use as a context manager or call `start()` / `stop()`; `base_url` ends in `/v1`.
    """

    def __init__(
        self,
        latency: float = 0.0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Iterable[str] = ("test-model",),
        responder: Callable[[dict[str, Any]], Reply | dict[str, Any] | str | None] | None = None,
    ) -> None:
        self.latency = latency
        self.host, self.port = host, port
        self.models = list(models)
        self.responder = responder
        self.errors: list[str] = []  # responder exceptions, so a fixture can fail on them
        self.in_flight = 0
        self.max_in_flight = 0
        self._spans: list[tuple[float, float]] = []  # (start, end) of each request's wait
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._log: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self._fault_rates: dict[str, float] = {}
        self._fault_rng = random.Random(0)
        self._fault_retry_after = 0.1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> LlmServer:
        """Bind the socket and serve in a daemon thread; returns self once listening."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="llm-server", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result(timeout=30)
        return self

    async def _serve(self, sock: socket.socket) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/stats", self._stats)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=2048).start()

    def stop(self) -> None:
        """Release hanging requests, close all connections and join the thread."""
        if self._loop is None or self._thread is None:
            return
        loop, self._loop = self._loop, None

        async def shutdown() -> None:
            assert self._stopping is not None and self._runner is not None
            self._stopping.set()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=30)
        loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------
    def script(self, items: Iterable[Reply | dict[str, Any] | str]) -> None:
        """Queue replies/faults; each chat request consumes the next one in order."""
        replies = [Reply.of(item) for item in items]
        with self._lock:
            self._queue.extend(replies)

    def pending_script(self) -> int:
        with self._lock:
            return len(self._queue)

    def faults(
        self,
        *,
        rate_500: float = 0.0,
        rate_429: float = 0.0,
        rate_503: float = 0.0,
        rate_hang: float = 0.0,
        rate_reset: float = 0.0,
        rate_body: float = 0.0,
        rate_truncate: float = 0.0,
        retry_after: float = 0.1,
        seed: int = 0,
    ) -> None:
        """Inject random faults into unscripted requests (all rates 0 turns them off)."""
        rates = {
            "500": rate_500, "429": rate_429, "503": rate_503, "hang": rate_hang,
            "reset": rate_reset, "body": rate_body, "truncate": rate_truncate,
        }  # fmt: skip
        if sum(rates.values()) > 1:
            raise ValueError("fault rates sum to more than 1")
        with self._lock:
            self._fault_rates = {k: v for k, v in rates.items() if v > 0}
            self._fault_rng = random.Random(seed)
            self._fault_retry_after = retry_after

    def _random_fault(self) -> Reply | None:
        draw = self._fault_rng.random()
        for name, rate in self._fault_rates.items():
            if draw < rate:
                if name.isdigit():
                    after = self._fault_retry_after if name == "429" else None
                    return Reply(status=int(name), retry_after=after)
                return Reply(**{name: "{not json" if name == "body" else True})
            draw -= rate
        return None

    # -- recording -------------------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat payload received, in arrival order (a copy)."""
        with self._lock:
            return [r.payload for r in self._log]

    @property
    def log(self) -> list[Recorded]:
        """Every chat request with its index, fingerprint and outcome (a copy)."""
        with self._lock:
            return list(self._log)

    def fingerprints(self) -> Counter[str]:
        with self._lock:
            return Counter(r.fingerprint for r in self._log)

    def count_duplicates(self) -> int:
        """How many payloads were identical to an earlier payload."""
        counts = self.fingerprints()
        return sum(counts.values()) - len(counts)

    def outcomes(self) -> Counter[str]:
        with self._lock:
            return Counter(r.outcome for r in self._log)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until `count` chat requests have arrived; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._log) >= count, timeout)

    def clear(self) -> None:
        """Forget recorded requests, queued script items and fault settings."""
        with self._lock:
            self._log.clear()
            self._queue.clear()
            self._fault_rates = {}

    # -- handlers --------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "tests"} for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        stats = {
            "requests": len(self._log),
            "duplicates": self.count_duplicates(),
            "max_in_flight": self.max_in_flight,
            "outcomes": dict(self.outcomes()),
            "in_flight_per_second": self.in_flight_per_second(),
        }
        return web.json_response(stats)

    def spans(self) -> list[tuple[float, float]]:
        """(start, end) on time.monotonic() of every finished chat request, in end order."""
        return list(self._spans)  # a copy: handlers append from the server's thread

    def in_flight_per_second(self) -> list[float]:
        """Mean requests in flight in each second since the first request arrived."""
        spans = list(self._spans)
        if not spans:
            return []
        origin = min(a for a, _ in spans)
        seconds = [0.0] * (int(max(b for _, b in spans) - origin) + 1)
        for a, b in spans:
            # over whole seconds by index: stepping t forward by float differences could
            # stall (origin + k + 1 - origin rounding below k + 1 gave a step of 0: a hang)
            for k in range(int(a - origin), min(int(b - origin), len(seconds) - 1) + 1):
                seconds[k] += max(0.0, min(b, origin + k + 1) - max(a, origin + k))
        return [round(x, 1) for x in seconds]

    def _admit(self, payload: dict[str, Any]) -> tuple[Recorded, Reply | None]:
        with self._arrived:
            entry = Recorded(len(self._log), payload, fingerprint(payload))
            self._log.append(entry)
            reply = self._queue.popleft() if self._queue else self._random_fault()
            self._arrived.notify_all()
        return entry, reply

    def _respond(self, payload: dict[str, Any]) -> Reply:
        if self.responder is None:
            return Reply()
        try:
            answer = self.responder(payload)
        except Exception as err:  # noqa: BLE001  (a responder bug must be loud, not a bare 500)
            self.errors.append(f"responder raised {err!r}")
            return Reply(status=500, message=f"responder raised {err!r}")
        return Reply() if answer is None else Reply.of(answer)

    async def _wait(self, seconds: float | None) -> bool:
        """Sleep up to `seconds` (None = forever); True if the server began stopping."""
        assert self._stopping is not None
        if seconds is not None and seconds <= 0:
            return self._stopping.is_set()
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            return _error(400, "'messages' is required and must be a list")
        if payload.get("stream"):
            return _error(400, "this test server does not stream; send stream=false")
        entry, reply = self._admit(payload)
        reply = reply or self._respond(payload)
        entry.outcome = reply.kind()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started = time.monotonic()
        try:
            if await self._wait(self.latency + reply.delay):
                return _error(503, "server stopping")
            if reply.reset:
                _abort(request)
            if reply.hang or reply.reset:
                await self._wait(None)  # handler_cancellation ends this when the peer leaves
                return _error(503, "server stopping")
            return self._answer(payload, reply, entry.index)
        finally:
            self.in_flight -= 1
            self._spans.append((started, time.monotonic()))

    def _answer(self, payload: dict[str, Any], reply: Reply, index: int) -> web.Response:
        if reply.status != 200:
            return _error(reply.status, reply.message, reply.retry_after)
        if reply.body is not None:
            return web.Response(text=reply.body, content_type="application/json")
        if reply.content is not None:
            content = reply.content
        elif reply.json is not _UNSET:
            content = json.dumps(reply.json)
        else:
            content = default_content(payload)
        finish = reply.finish_reason or "stop"
        if reply.truncate:
            content, finish = content[: max(1, len(content) // 2)], reply.finish_reason or "length"
        prompt, completion = _tokens(_prompt_text(payload)), _tokens(content)
        return web.json_response(
            {
                "id": f"chatcmpl-{index}-{fingerprint(payload)[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": payload.get("model") or self.models[0],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )


def _error(
    status: int, message: str | None = None, retry_after: float | None = None
) -> web.Response:
    headers = {}
    if retry_after is not None:
        headers = {
            "Retry-After": f"{retry_after:g}",
            "retry-after-ms": str(int(retry_after * 1000)),
        }
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(status, "server_error")
    body = {"error": {"message": message or f"scripted {status}", "type": kind, "code": status}}
    return web.json_response(body, status=status, headers=headers)


def _abort(request: web.Request) -> None:
    """Close the connection with an RST (SO_LINGER 0) and no response."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible test server")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per chat request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-500", type=float, default=0.0)
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-hang", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    server = LlmServer(args.latency, host=args.host, port=args.port).start()
    server.faults(
        rate_500=args.rate_500, rate_429=args.rate_429, rate_hang=args.rate_hang, seed=args.seed
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(json.dumps({"base_url": server.base_url}), flush=True)
    while not done.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
