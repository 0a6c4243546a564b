"""Cancel and expiry: finished results kept, every unexecuted request in the error file, counts add up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from harness import BatchgateServer, FakeUpstream
from helpers import (
    assert_exactly_once,
    chat_line,
    run_batch,
    submit_batch,
    unique,
    wait_for_batch,
    wait_until,
)
from openai import OpenAI


def fast_and_hanging(n_fast: int, n_hang: int) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    fast = [unique("fast") for _ in range(n_fast)]
    hang = [unique("hang") for _ in range(n_hang)]
    lines = [chat_line(c) for c in fast] + [chat_line(c, x_fake={"hang": True, "key": c}) for c in hang]
    return fast, hang, lines


def wait_idle(fake: FakeUpstream, timeout: float = 3.0) -> int:
    """Requests still in flight at the fake once it had `timeout` seconds to notice closed connections."""
    deadline = time.monotonic() + timeout
    while fake.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(fake.stats()["in_flight"])


def test_cancel_in_progress(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    fast, hang, lines = fast_and_hanging(6, 4)
    batch = submit_batch(client, lines)
    wait_until(client, batch.id, lambda b: b.request_counts.completed >= 6, timeout=30)  # type: ignore[union-attr]
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.id == batch.id
    assert cancelling.status in {"cancelling", "cancelled"}
    assert isinstance(cancelling.cancelling_at, int)
    done = wait_for_batch(client, batch.id, timeout=20)  # in-flight requests are aborted within seconds
    assert done.status == "cancelled"
    assert isinstance(done.cancelled_at, int)
    assert done.cancelling_at == cancelling.cancelling_at
    assert done.cancelled_at >= done.cancelling_at  # type: ignore[operator]
    assert done.completed_at is None
    outputs, errors = assert_exactly_once(client, done, fast + hang)
    assert set(outputs) == set(fast)
    for cid in hang:
        assert errors[cid]["response"] is None
        assert errors[cid]["error"]["code"] == "batch_cancelled"
        assert errors[cid]["error"]["message"]
        assert errors[cid]["id"].startswith("batch_req_")
    stats = fake_upstream.stats()
    # Not retried after the abort. The window need not have sent every hanging request before the cancel (it
    # follows the answers, and hung requests give none), but the ones it sent went once.
    assert any(cid in stats["by_key"] for cid in hang)
    assert all(stats["by_key"].get(cid, 0) <= 1 for cid in hang)
    assert wait_idle(fake_upstream) == 0  # the hanging requests were really aborted


@pytest.fixture(scope="module")
def narrow_server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    """Eight requests in flight at most, so a long batch is mostly still queued when it is cancelled."""
    yield module_server_factory(env={"BATCHGATE_UPSTREAM_CONCURRENCY": "8"})


def test_cancel_keeps_pending_requests_out_of_upstream(
    narrow_server: BatchgateServer, fake_upstream: FakeUpstream
) -> None:
    client = narrow_server.client()
    fake_upstream.control(latency=0.5)
    ids = [unique("pend") for _ in range(400)]
    batch = submit_batch(client, [chat_line(c) for c in ids])
    wait_until(client, batch.id, lambda b: b.status == "in_progress", timeout=30)
    client.batches.cancel(batch.id)
    done = wait_for_batch(client, batch.id, timeout=30)
    assert done.status == "cancelled"
    outputs, errors = assert_exactly_once(client, done, ids)
    assert errors, "400 requests at 0.5 s each can't all be done before the cancel"
    assert {line["error"]["code"] for line in errors.values()} == {"batch_cancelled"}
    sent = fake_upstream.stats()["total"]
    assert sent < len(ids)  # dispatching stopped
    assert len(outputs) <= sent


def test_cancel_right_after_create(client: OpenAI) -> None:
    _, hang, lines = fast_and_hanging(0, 3)
    batch = submit_batch(client, lines)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in {"cancelling", "cancelled"}
    done = wait_for_batch(client, batch.id, timeout=20)
    assert done.status == "cancelled"
    assert done.output_file_id is None
    counts = done.request_counts
    assert counts is not None
    assert counts.completed == 0
    assert counts.completed + counts.failed == counts.total
    if counts.total:
        _, errors = assert_exactly_once(client, done, hang)
        assert {line["error"]["code"] for line in errors.values()} == {"batch_cancelled"}


def test_cancel_twice(client: OpenAI) -> None:
    _, _, lines = fast_and_hanging(0, 2)
    batch = submit_batch(client, lines)
    client.batches.cancel(batch.id)
    again = client.batches.cancel(batch.id)  # cancelling: returned unchanged, not an error
    assert again.status in {"cancelling", "cancelled"}
    wait_for_batch(client, batch.id, timeout=20)
    final = client.batches.cancel(batch.id)  # cancelled → 200
    assert final.status == "cancelled"


def test_cancel_completed_is_409(server: BatchgateServer, client: OpenAI) -> None:
    batch = run_batch(client, [chat_line(unique("done"))])
    assert batch.status == "completed"
    with pytest.raises(openai.ConflictError) as info:
        client.batches.cancel(batch.id)
    e = info.value
    assert e.status_code == 409
    assert e.response.headers.get("x-should-retry") == "false"
    assert isinstance(e.body, dict)
    assert e.body["message"] == "Cannot cancel a batch with status 'completed'."
    assert client.batches.retrieve(batch.id).status == "completed"


def test_cancel_failed_is_409(client: OpenAI) -> None:
    created = client.batches.create(
        input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = wait_for_batch(client, created.id)
    assert batch.status == "failed"
    with pytest.raises(openai.ConflictError) as info:
        client.batches.cancel(batch.id)
    assert info.value.response.headers.get("x-should-retry") == "false"
    assert isinstance(info.value.body, dict)
    assert info.value.body["message"] == "Cannot cancel a batch with status 'failed'."


def test_sdk_does_not_retry_409(server: BatchgateServer, fake_upstream: FakeUpstream) -> None:
    """With the SDK's default retries, x-should-retry: false makes the 409 come back at once."""
    sdk = server.client(max_retries=2)
    batch = run_batch(sdk, [chat_line(unique("r409"))])
    with pytest.raises(openai.ConflictError) as info:
        sdk.batches.cancel(batch.id)
    assert info.value.response.request.headers.get("x-stainless-retry-count") == "0"
    sdk.close()


# ---------------------------------------------------------------- expiry

WINDOW_SCALE = 0.0001  # 24h → 8.64 s


@pytest.fixture(scope="module")
def expiring_server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    env = {"BATCHGATE_WINDOW_SCALE": str(WINDOW_SCALE), "BATCHGATE_UPSTREAM_CONCURRENCY": "8"}
    yield module_server_factory(env=env)


def test_expiry(expiring_server: BatchgateServer, fake_upstream: FakeUpstream) -> None:
    client = expiring_server.client()
    fast, hang, lines = fast_and_hanging(5, 3)
    batch = submit_batch(client, lines)
    assert batch.expires_at is not None
    assert abs(batch.expires_at - batch.created_at - 86400 * WINDOW_SCALE) <= 1
    done = wait_for_batch(client, batch.id, timeout=40)
    assert done.status == "expired"
    assert isinstance(done.expired_at, int)
    assert done.expired_at >= done.expires_at  # type: ignore[operator]
    assert done.completed_at is None
    outputs, errors = assert_exactly_once(client, done, fast + hang)
    assert set(outputs) == set(fast)
    for cid in hang:
        assert errors[cid]["response"] is None
        assert errors[cid]["error"]["code"] == "batch_expired"
        assert errors[cid]["error"]["message"]
    assert wait_idle(fake_upstream) == 0


def test_expiry_while_validating_or_queued(expiring_server: BatchgateServer, fake_upstream: FakeUpstream) -> None:
    """Requests never sent at all are expired too (latency and 8 at a time keep most of them waiting)."""
    client = expiring_server.client()
    fake_upstream.control(latency=1.0)
    ids = [unique("queued") for _ in range(300)]
    batch = submit_batch(client, [chat_line(c) for c in ids])
    done = wait_for_batch(client, batch.id, timeout=40)
    assert done.status == "expired"
    _, errors = assert_exactly_once(client, done, ids)
    expired = [c for c, line in errors.items() if line["response"] is None]
    assert len(expired) > 100
    assert fake_upstream.stats()["total"] < len(ids)  # the queued ones were never sent
    assert all(errors[c]["error"]["code"] == "batch_expired" for c in expired)


def test_short_batch_finishes_before_expiry(expiring_server: BatchgateServer) -> None:
    client = expiring_server.client()
    ids = [unique("quick") for _ in range(3)]
    done = run_batch(client, [chat_line(c) for c in ids])
    assert done.status == "completed"
    assert_exactly_once(client, done, ids)


def test_cancel_expired_is_409(expiring_server: BatchgateServer) -> None:
    client = expiring_server.client()
    _, _, lines = fast_and_hanging(0, 1)
    done = wait_for_batch(client, submit_batch(client, lines).id, timeout=40)
    assert done.status == "expired"
    with pytest.raises(openai.ConflictError) as info:
        client.batches.cancel(done.id)
    assert info.value.response.headers.get("x-should-retry") == "false"
