"""A small fake OpenAI-compatible upstream for batchgate's tests.

Run it as `python tests/support/fake_upstream.py --port P` (P may be 0; the chosen port is printed as
`LISTENING <port>` on stdout) or import `create_app()` / `FakeState`.

It answers `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/responses`,
`/v1/moderations`, `/v1/images/generations`, `/v1/images/edits` and `/v1/videos` with realistic,
and Anthropic's `/v1/messages` once the `messages` knob is on (off, it is a 404 like an OpenAI-only server),
deterministic bodies (the reply echoes the input; an image is a tiny PNG, a video a queued job) and an
`x-request-id` header. Misbehaviour is switched on in two ways:

* globally, with `POST /_control` (JSON knobs: latency, error_rate, rate_429, retry_after,
  drop_rate, hang_rate, down_status, seed, models, messages, engine_metrics) — `GET /_control` reads them,
  `POST /_reset` clears knobs and counters;
* per request, with an `x_fake` object inside the request body:
  `{"status": 400, "body": {...}}` always answers that status/body; with `"fail_times": N` only the
  first N attempts of the request's key fail (status default 500); `{"latency": s}`,
  `{"hang": true}` / `{"hang_times": N}`, `{"drop_times": N}` (close the connection without an
  answer), `{"retry_after": s}` (adds a Retry-After header to a 429/5xx answer).

`GET /metrics` answers like vLLM's (`vllm:num_requests_running`, `..._waiting`, `vllm:kv_cache_usage_perc`) with
the numbers of the `engine_metrics` knob (`{"running": 3, "waiting": 1, "kv": 0.5}`); 404 while it is null, as a
server without metrics.

`GET /_stats` reports what was received: totals, per-key counts and arrival times, the
request ids handed out per key, statuses sent, models, `priority` fields ("none" when absent) and
Authorization headers seen (of requests and of `GET /metrics`), and the highest number of requests in flight at once.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import random
import struct
import sys
import time
import uuid
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ENDPOINTS = (
    "chat/completions", "completions", "embeddings", "responses", "moderations", "images/generations", "images/edits",
    "videos", "messages",
)


def png_1x1() -> bytes:
    """A valid 1x1 grey PNG, built rather than pasted so it is plainly what it says."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit greyscale
    pixels = zlib.compress(b"\x00\x80")  # one row: filter byte 0, then the grey value
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG_B64 = base64.b64encode(png_1x1()).decode()  # what every generated or edited image is
DEFAULT_KNOBS: dict[str, Any] = {
    "latency": 0.0,
    "error_rate": 0.0,
    "rate_429": 0.0,
    "retry_after": None,
    "drop_rate": 0.0,
    "hang_rate": 0.0,
    "down_status": None,  # e.g. 503: every request and GET /v1/models answers it (a proxy before a dead engine)
    "seed": None,
    "models": ["gpt-4o-mini", "text-embedding-3-small"],
    "messages": False,  # serve Anthropic's /v1/messages (as vLLM and llama.cpp's server do)
    "engine_metrics": None,  # {"running": n, "waiting": n, "kv": 0-1}: GET /metrics answers them as vLLM does
}
HANG_LIMIT_SECONDS = 600.0


@dataclass
class FakeState:
    """Knobs and counters of one fake upstream."""

    knobs: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_KNOBS))
    rng: random.Random = field(default_factory=random.Random)
    total: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_key: Counter[str] = field(default_factory=Counter)
    times_by_key: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    request_ids_by_key: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    auth: Counter[str] = field(default_factory=Counter)
    priorities: Counter[str] = field(default_factory=Counter)
    metrics_auth: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    hung: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def reset(self) -> None:
        fresh = FakeState()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def set_knobs(self, knobs: dict[str, Any]) -> None:
        unknown = set(knobs) - set(DEFAULT_KNOBS)
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}")
        self.knobs.update(knobs)
        if "seed" in knobs:
            self.rng = random.Random(knobs["seed"])

    def stats(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_path": dict(self.by_path),
            "by_key": dict(self.by_key),
            "times_by_key": {k: list(v) for k, v in self.times_by_key.items()},
            "request_ids_by_key": {k: list(v) for k, v in self.request_ids_by_key.items()},
            "statuses": dict(self.statuses),
            "models": dict(self.models),
            "auth": dict(self.auth),
            "priorities": dict(self.priorities),
            "metrics_auth": dict(self.metrics_auth),
            "dropped": self.dropped,
            "hung": self.hung,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }


def request_key(body: Any) -> str:
    """The key a request is counted under: x_fake.key, else `user`, else the last input text."""
    if not isinstance(body, dict):
        return "<non-object>"
    fake = body.get("x_fake")
    if isinstance(fake, dict) and fake.get("key") is not None:
        return str(fake["key"])
    if body.get("user") is not None:
        return str(body["user"])
    return input_text(body)


def input_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        last = messages[-1]
        if isinstance(last, dict):
            return content_text(last.get("content"))
    for name in ("input", "prompt"):
        if name in body:
            value = body[name]
            if isinstance(value, list) and value:
                return content_text(value[-1])
            return content_text(value)
    return ""


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(content_text(part) for part in content)
    if isinstance(content, dict):
        return content_text(content.get("text", content.get("content", "")))
    return json.dumps(content)


def count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(status, "server_error")
    return {
        "error": {
            "message": message or f"fake upstream error {status}",
            "type": "invalid_request_error" if status < 500 and status != 429 else kind,
            "param": None,
            "code": kind if status == 429 else None,
        }
    }


def short_id(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    prompt = " ".join(content_text(m.get("content")) for m in messages if isinstance(m, dict))
    reply = "echo: " + input_text(body)
    prompt_tokens, completion_tokens = count_tokens(prompt), count_tokens(reply)
    return {
        "id": "chatcmpl-" + short_id(json.dumps(body, sort_keys=True)),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": "fp_fake",
    }


def completion_body(body: dict[str, Any]) -> dict[str, Any]:
    prompt = input_text(body)
    reply = "echo: " + prompt
    prompt_tokens, completion_tokens = count_tokens(prompt), count_tokens(reply)
    return {
        "id": "cmpl-" + short_id(json.dumps(body, sort_keys=True)),
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "text": reply, "logprobs": None, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def embedding_vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128.0, 6) for i in range(dims)]


def embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 8
    tokens = sum(count_tokens(content_text(item)) for item in inputs)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": embedding_vector(content_text(item), dims)}
            for i, item in enumerate(inputs)
        ],
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def responses_body(body: dict[str, Any]) -> dict[str, Any]:
    prompt = input_text(body)
    reply = "echo: " + prompt
    input_tokens, output_tokens = count_tokens(prompt), count_tokens(reply)
    seed = json.dumps(body, sort_keys=True)
    return {
        "id": "resp_" + short_id(seed),
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model"),
        "output": [
            {
                "type": "message",
                "id": "msg_" + short_id(seed + "msg"),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def moderations_body(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    categories = ("harassment", "hate", "self-harm", "sexual", "violence")
    return {
        "id": "modr-" + short_id(json.dumps(body, sort_keys=True)),
        "model": body.get("model") or "omni-moderation-latest",
        "results": [
            {
                "flagged": False,
                "categories": {c: False for c in categories},
                "category_scores": {c: 0.0 for c in categories},
            }
            for _ in inputs
        ],
    }


def images_body(body: dict[str, Any]) -> dict[str, Any]:
    """An `images.generate` / `images.edit` ImagesResponse: `n` images as b64_json, with GPT-image usage."""
    n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
    prompt_tokens = count_tokens(input_text(body))
    return {
        "created": int(time.time()),
        "data": [{"b64_json": PNG_B64, "revised_prompt": input_text(body)} for _ in range(n)],
        "background": "opaque",
        "output_format": "png",
        "size": body.get("size") or "1024x1024",
        "quality": body.get("quality") or "low",
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0},
            "output_tokens": 16 * n,
            "total_tokens": prompt_tokens + 16 * n,
        },
    }


def video_body(body: dict[str, Any]) -> dict[str, Any]:
    """A `videos.create` answer: the job, queued (a real one is polled and downloaded later)."""
    return {
        "id": "video_" + short_id(json.dumps(body, sort_keys=True)),
        "object": "video",
        "model": body.get("model"),
        "status": "queued",
        "progress": 0,
        "created_at": int(time.time()),
        "completed_at": None,
        "expires_at": None,
        "prompt": body.get("prompt"),
        "size": body.get("size") or "720x1280",
        "seconds": str(body.get("seconds") or "4"),
        "remixed_from_video_id": None,
        "error": None,
    }


def messages_body(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Message echoing the last user message ("native: ..."), so a test tells it from a translated
    chat completion ("echo: ...")."""
    system = body.get("system")
    reply = "native: " + input_text(body)
    texts = [content_text(m.get("content")) for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt = " ".join(([content_text(system)] if system else []) + texts)
    return {
        "id": "msg_" + short_id(json.dumps(body, sort_keys=True)),
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [{"type": "text", "text": reply}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": count_tokens(prompt), "output_tokens": count_tokens(reply)},
    }


BUILDERS = {
    "chat/completions": chat_body,
    "completions": completion_body,
    "embeddings": embeddings_body,
    "responses": responses_body,
    "moderations": moderations_body,
    "images/generations": images_body,
    "images/edits": images_body,
    "videos": video_body,
    "messages": messages_body,
}


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers or {},
    )


async def hang(request: web.Request) -> None:
    """Wait until the client closes the connection (or a generous limit passes)."""
    deadline = time.monotonic() + HANG_LIMIT_SECONDS
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)


def drop(request: web.Request) -> web.Response:
    """Close the connection without writing a response."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # aiohttp cannot write this to an aborted transport; the client sees a dropped connection.
    return web.Response(status=499)


def make_handler(state: FakeState, endpoint: str):  # type: ignore[no-untyped-def]
    build = BUILDERS[endpoint]

    async def handle(request: web.Request) -> web.StreamResponse:
        if endpoint == "messages" and not state.knobs["messages"]:
            return json_response(404, error_body(404, "Not Found"))
        arrived = time.monotonic()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        key = request_key(body)
        state.total += 1
        state.by_path[endpoint] += 1
        state.by_key[key] += 1
        attempt = state.by_key[key]
        state.times_by_key[key].append(arrived)
        state.auth[request.headers.get("Authorization", "")] += 1
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            state.models[body["model"]] += 1
        state.priorities[str(body.get("priority")) if isinstance(body, dict) and "priority" in body else "none"] += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await answer(request, state, build, body, key, attempt)
        finally:
            state.in_flight -= 1

    return handle


async def answer(
    request: web.Request,
    state: FakeState,
    build: Any,
    body: Any,
    key: str,
    attempt: int,
) -> web.StreamResponse:
    knobs = state.knobs
    fake = body.get("x_fake") if isinstance(body, dict) else None
    fake = fake if isinstance(fake, dict) else {}
    request_id = "req_" + uuid.uuid4().hex
    headers = {"x-request-id": request_id}

    latency = float(fake.get("latency", knobs["latency"]) or 0.0)
    if latency > 0:
        await asyncio.sleep(latency)

    if fake.get("hang") or attempt <= int(fake.get("hang_times", 0)) or roll(state, "hang_rate"):
        state.hung += 1
        await hang(request)
        return web.Response(status=504)
    if attempt <= int(fake.get("drop_times", 0)) or roll(state, "drop_rate"):
        state.dropped += 1
        return drop(request)

    retry_after = fake.get("retry_after", knobs["retry_after"])
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)

    status: int | None = None
    payload: Any = None
    if "status" in fake and "fail_times" not in fake:
        status = int(fake["status"])
        payload = fake.get("body", error_body(status))
    elif attempt <= int(fake.get("fail_times", 0)):
        status = int(fake.get("status", 500))
        payload = fake.get("body", error_body(status))
    elif roll(state, "rate_429"):
        status, payload = 429, error_body(429, "Rate limit reached (fake)")
    elif roll(state, "error_rate"):
        status, payload = 500, error_body(500, "The server had an error (fake)")
    elif not isinstance(body, dict):
        status, payload = 400, error_body(400, "We could not parse the JSON body of your request.")
    elif not isinstance(body.get("model"), str) and build is not moderations_body:
        status, payload = 400, error_body(400, "you must provide a model parameter")

    if knobs["down_status"] is not None:
        status, payload = int(knobs["down_status"]), error_body(int(knobs["down_status"]))
    if status is None:
        status, payload = 200, build(body)
        headers.pop("Retry-After", None)
    state.statuses[str(status)] += 1
    state.request_ids_by_key[key].append(request_id)
    return json_response(status, payload, headers)


def vllm_metrics(numbers: dict[str, Any]) -> str:
    """Exposition text shaped as vLLM's (the gauges batchgate reads, among others it does not)."""
    labels = '{engine="0",model_name="fake"}'
    return "".join([
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n",
        "# TYPE vllm:num_requests_running gauge\n",
        f"vllm:num_requests_running{labels} {float(numbers.get('running', 0))}\n",
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n",
        "# TYPE vllm:num_requests_waiting gauge\n",
        f"vllm:num_requests_waiting{labels} {float(numbers.get('waiting', 0))}\n",
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n",
        "# TYPE vllm:kv_cache_usage_perc gauge\n",
        f"vllm:kv_cache_usage_perc{labels} {float(numbers.get('kv', 0))}\n",
        "# TYPE vllm:prompt_tokens_total counter\n",
        f"vllm:prompt_tokens_total{labels} 1234.0\n",
    ])


def roll(state: FakeState, knob: str) -> bool:
    rate = float(state.knobs.get(knob) or 0.0)
    return rate > 0 and state.rng.random() < rate


STATE = web.AppKey("state", FakeState)


def create_app(state: FakeState | None = None) -> web.Application:
    state = state or FakeState()
    app = web.Application(client_max_size=1024**3)
    app[STATE] = state

    async def control(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                state.set_knobs(await request.json())
            except ValueError as exc:
                return json_response(400, {"error": str(exc)})
        return json_response(200, state.knobs)

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return json_response(200, state.knobs)

    async def stats(request: web.Request) -> web.Response:
        return json_response(200, state.stats())

    async def models(request: web.Request) -> web.Response:
        if state.knobs["down_status"] is not None:
            return json_response(int(state.knobs["down_status"]), error_body(int(state.knobs["down_status"])))
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in state.knobs["models"]]
        return json_response(200, {"object": "list", "data": data})

    async def metrics(request: web.Request) -> web.Response:
        state.metrics_auth[request.headers.get("Authorization", "")] += 1
        numbers = state.knobs["engine_metrics"]
        if numbers is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(text=vllm_metrics(numbers), content_type="text/plain")

    app.router.add_route("*", "/_control", control)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/_reset", reset)
    app.router.add_get("/_stats", stats)
    app.router.add_get("/v1/models", models)
    for endpoint in ENDPOINTS:
        app.router.add_post(f"/v1/{endpoint}", make_handler(state, endpoint))
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(create_app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    bound = server.sockets[0].getsockname()[1] if server is not None and server.sockets else port
    print(f"LISTENING {bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
