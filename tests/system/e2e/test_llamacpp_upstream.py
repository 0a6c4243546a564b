"""Issue 13.5 against a real engine: llama.cpp's own HTTP server (8 slots) as the upstream.

llama.cpp never answers 429 when full; it queues, so latency is its only overload signal. A batch must not
flood it: with the request timeout at 3x the slowest answer a direct client with one connection per slot
gets, every line succeeds and no upstream attempt times out. Not timed: the timeout is derived from a
direct measurement taken in the same test, on the same engine.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import perf_counter
from typing import Any

import pytest
from harness import BatchgateServer
from helpers import assert_exactly_once, run_batch
from llamacpp import MODEL, LlamaCppServer, by_label, skip_unless_available

pytestmark = pytest.mark.local_models

SLOTS = 8
LINES = 32  # four rounds of the engine's slots: a window of hundreds queues the last round behind three others


def body(i: int) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 24, "temperature": 0,
            "messages": [{"role": "user", "content": f"Write one sentence about the number {i}."}]}


@pytest.fixture
def llama(tmp_path: Path) -> Iterator[LlamaCppServer]:
    skip_unless_available()
    with LlamaCppServer(tmp_path / "llama.log", slots=SLOTS) as server:
        yield server


def slowest_direct_answer(llama: LlamaCppServer) -> float:
    """The slowest of 2 x SLOTS requests sent with one connection per slot (every slot busy)."""

    def timed(i: int) -> float:
        t0 = perf_counter()
        llama.chat(body(i))
        return perf_counter() - t0

    with ThreadPoolExecutor(SLOTS) as pool:
        return max(pool.map(timed, range(2 * SLOTS)))


def test_a_batch_through_llamacpp_never_times_out_at_3x_the_direct_slowest_answer(
    llama: LlamaCppServer, server_factory: Any
) -> None:
    slowest = slowest_direct_answer(llama)
    server: BatchgateServer = server_factory(upstream=llama.base_url,
                                             env={"BATCHGATE_REQUEST_TIMEOUT": f"{3 * slowest:.3f}"})
    client = server.client()
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body(i)}
             for i in range(LINES)]
    batch = run_batch(client, lines, timeout=240)

    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:  # open on loopback
        attempts = by_label(response.read().decode(), "batchgate_upstream_requests_total", "outcome")
    assert not attempts.get("timeout"), \
        f"upstream attempts timed out at {3 * slowest:.2f} s (3 x {slowest:.2f} s): {attempts}"
    assert attempts.get("ok") == LINES
    outputs, errors = assert_exactly_once(client, batch, [line["custom_id"] for line in lines])
    assert batch.status == "completed"
    assert not errors, {cid: e["error"] for cid, e in list(errors.items())[:5]}
    assert all(o["response"]["status_code"] == 200 for o in outputs.values())
    assert batch.usage is not None and batch.usage.output_tokens > 0
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:  # open on loopback
        attempts = by_label(response.read().decode(), "batchgate_upstream_requests_total", "outcome")
    assert attempts.get("ok") == LINES
    assert not attempts.get("timeout"), \
        f"upstream attempts timed out at {3 * slowest:.2f} s (3 x {slowest:.2f} s): {attempts}"
