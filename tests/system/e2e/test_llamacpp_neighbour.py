"""Issue 16 against a real engine: a neighbourly route beside a user of llama.cpp's own server (2 slots).

The user sends chat completions straight to the engine, one after another, the whole time. The route
(`neighbourly = true`, `engine_metrics = "llamacpp"`) reads the engine's `/metrics` and `/slots`: before any batch,
batchgate's `/metrics` shows its replica's engine running the user's request (`batchgate_engine_running`, traffic
that is not batchgate's), and a small batch then completes, every line answered once, while the user goes on and
is answered every time, through the batch and after it. Nothing is timed: the test waits for states.
bench/neighbour_llama.py measures the rest.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from time import sleep
from typing import Any

import pytest
from harness import BatchgateServer
from helpers import assert_exactly_once, run_batch
from llamacpp import MODEL, LlamaCppServer, by_label, skip_unless_available

pytestmark = pytest.mark.local_models

SLOTS = 2
LINES = 6


def body(i: int, max_tokens: int) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": f"Write one sentence about the number {i}."}]}


@pytest.fixture
def llama(tmp_path: Path) -> Iterator[LlamaCppServer]:
    skip_unless_available()
    with LlamaCppServer(tmp_path / "llama.log", slots=SLOTS) as server:
        yield server


class User(threading.Thread):
    """An interactive client sending to the engine directly, one request after another, until stopped."""

    def __init__(self, llama: LlamaCppServer) -> None:
        super().__init__(daemon=True)
        self.llama = llama
        self.stop = threading.Event()
        self.answered = 0
        self.errors: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                answer = self.llama.chat(body(1000 + i, 24), timeout=120)
            except (OSError, urllib.error.URLError) as e:
                self.errors.append(repr(e))
                continue
            if answer["usage"]["completion_tokens"] > 0:
                self.answered += 1
            else:
                self.errors.append(f"empty answer: {answer}")


def gauge(server: BatchgateServer, name: str) -> float | None:
    """The route's replica's value of a batchgate gauge on /metrics, or None while it has none."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:  # open on loopback
        values = by_label(response.read().decode(), name, "upstream")
    return values.get("llama")


def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(3000):  # a bound on a state, not a timing: the engine answers in about a second
        if check():
            return
        sleep(0.1)
    raise AssertionError(f"never: {what}")


def test_a_neighbourly_route_reads_llamacpp_and_its_batch_completes_beside_a_user(
    llama: LlamaCppServer, server_factory: Any, tmp_path: Path
) -> None:
    config = tmp_path / "routes.toml"
    config.write_text(f'[[upstreams]]\nname = "llama"\nurl = "{llama.base_url}"\nengine_metrics = "llamacpp"\n'
                      "neighbourly = true\n")
    server: BatchgateServer = server_factory(upstream=None, args=["--config", str(config)])
    client = server.client()
    user = User(llama)
    user.start()
    try:
        until(lambda: (gauge(server, "batchgate_engine_running") or 0) >= 1,
              "batchgate's /metrics shows the user's request running in the engine")
        assert gauge(server, "batchgate_engine_waiting") is not None
        until(lambda: user.answered >= 1 or bool(user.errors), "the user's first answer")
        lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body(i, 8)}
                 for i in range(LINES)]
        batch = run_batch(client, lines, timeout=300)
        after_batch = user.answered
        until(lambda: user.answered > after_batch or bool(user.errors), "the user answered after the batch")
    finally:
        user.stop.set()
        user.join(timeout=130)

    assert batch.status == "completed"
    outputs, errors = assert_exactly_once(client, batch, [line["custom_id"] for line in lines])
    assert not errors, {cid: e["error"] for cid, e in list(errors.items())[:5]}
    assert all(o["response"]["status_code"] == 200 for o in outputs.values())
    assert not user.errors, user.errors[:3]
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:  # open on loopback
        attempts = by_label(response.read().decode(), "batchgate_upstream_requests_total", "outcome")
    assert attempts.get("ok") == LINES, attempts
    assert gauge(server, "batchgate_engine_running") is not None
