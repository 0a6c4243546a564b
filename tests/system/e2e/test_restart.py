"""Durability: kill -9 (or a graceful stop) mid-batch, restart on the same data dir, finish exactly once."""

from __future__ import annotations

from typing import Any

from harness import BatchgateServer, FakeUpstream
from helpers import assert_exactly_once, chat_line, submit_batch, wait_for_batch, wait_until

LINES = 300
CONCURRENCY = 8
RESTART_ENV = {
    "BATCHGATE_LEASE_SECONDS": "2",
    "BATCHGATE_UPSTREAM_CONCURRENCY": str(CONCURRENCY),
    "BATCHGATE_CHUNK_SIZE": "25",
}


def start(server_factory: Any, fake_upstream_factory: Any) -> tuple[BatchgateServer, FakeUpstream]:
    fake = fake_upstream_factory()
    fake.control(latency=0.1)
    server = server_factory(upstream=fake.base_url, env=RESTART_ENV)
    return server, fake


def ids_and_lines(prefix: str) -> tuple[list[str], list[dict[str, Any]]]:
    ids = [f"{prefix}-{i:04d}" for i in range(LINES)]
    return ids, [chat_line(cid, cid) for cid in ids]  # the fake counts each request under its text = custom_id


def completed(batch: Any) -> int:
    return int(batch.request_counts.completed) if batch.request_counts else 0


def assert_sent_at_most_once_plus_window(
    fake: FakeUpstream, ids: list[str], kills: int, unrecorded_at_kills: int | None = None
) -> None:
    stats = fake.stats()
    assert set(stats["by_key"]) == set(ids)
    resent = sorted(k for k, n in stats["by_key"].items() if n > 1)
    extra = stats["total"] - len(ids)
    if unrecorded_at_kills is not None:
        # A request whose result was recorded before a kill is never sent again: the extra sends are
        # bounded by what the upstream had seen but the store had not recorded at each kill.
        assert extra <= unrecorded_at_kills, (extra, unrecorded_at_kills, resent[:20])
    # The brief's window: only requests in flight at a kill (≤ UPSTREAM_CONCURRENCY each) are sent again.
    assert stats["total"] <= len(ids) + kills * CONCURRENCY, (stats["total"], resent[:20])
    assert len(resent) <= kills * CONCURRENCY, resent


def test_kill_9_mid_batch_resumes_exactly_once(server_factory: Any, fake_upstream_factory: Any) -> None:
    server, fake = start(server_factory, fake_upstream_factory)
    ids, lines = ids_and_lines("k9")
    client = server.client()
    batch = submit_batch(client, lines)

    unrecorded = 0
    for threshold in (60, 150):
        seen = wait_until(client, batch.id, lambda b, t=threshold: completed(b) >= t, timeout=60)
        assert completed(seen) < LINES, "the batch finished before the kill; the test proves nothing"
        server.kill()
        unrecorded += len(fake.stats()["by_key"]) - completed(seen)
        server.start()
        client = server.client()
        after = client.batches.retrieve(batch.id)
        assert after.status in {"in_progress", "finalizing", "completed"}
        assert completed(after) >= completed(seen)  # recorded results survived the kill

    done = wait_for_batch(client, batch.id, timeout=120)
    assert done.status == "completed", done
    outputs, errors = assert_exactly_once(client, done, ids)
    assert not errors
    assert all(outputs[cid]["response"]["body"]["choices"][0]["message"]["content"] == f"echo: {cid}" for cid in ids)
    assert_sent_at_most_once_plus_window(fake, ids, kills=2, unrecorded_at_kills=unrecorded)
    assert fake.stats()["max_in_flight"] <= CONCURRENCY


def test_graceful_stop_mid_batch_resumes(server_factory: Any, fake_upstream_factory: Any) -> None:
    server, fake = start(server_factory, fake_upstream_factory)
    ids, lines = ids_and_lines("term")
    client = server.client()
    batch = submit_batch(client, lines)
    seen = wait_until(client, batch.id, lambda b: completed(b) >= 80, timeout=60)
    assert completed(seen) < LINES
    server.stop()
    unrecorded = len(fake.stats()["by_key"]) - completed(seen)
    server.start()
    client = server.client()
    done = wait_for_batch(client, batch.id, timeout=120)
    assert done.status == "completed"
    assert_exactly_once(client, done, ids)
    assert_sent_at_most_once_plus_window(fake, ids, kills=1, unrecorded_at_kills=unrecorded)


def test_everything_survives_a_restart(server_factory: Any, fake_upstream_factory: Any) -> None:
    server, _ = start(server_factory, fake_upstream_factory)
    client = server.client()
    ids = [f"s-{i}" for i in range(5)]
    done = wait_for_batch(client, submit_batch(client, [chat_line(c) for c in ids]).id)
    assert done.status == "completed"
    other = client.files.create(file=("keep.bin", b"\x00keep me\xff"), purpose="user_data")
    upload = client.uploads.create(filename="u.txt", purpose="user_data", bytes=6, mime_type="text/plain")
    part = client.uploads.parts.create(upload.id, data=b"abc")
    output_before = client.files.content(done.output_file_id or "").content

    server.kill()
    server.start()
    client = server.client()
    again = client.batches.retrieve(done.id)
    assert again.model_dump() == done.model_dump()
    assert client.files.content(done.output_file_id or "").content == output_before
    assert client.files.content(other.id).content == b"\x00keep me\xff"
    assert done.id in {b.id for b in client.batches.list()}
    assert other.id in {f.id for f in client.files.list()}
    part2 = client.uploads.parts.create(upload.id, data=b"def")
    finished = client.uploads.complete(upload.id, part_ids=[part.id, part2.id])
    assert finished.file is not None
    assert client.files.content(finished.file.id).content == b"abcdef"


def test_kill_during_cancel(server_factory: Any, fake_upstream_factory: Any) -> None:
    server, _ = start(server_factory, fake_upstream_factory)
    ids, lines = ids_and_lines("kc")
    client = server.client()
    batch = submit_batch(client, lines)
    wait_until(client, batch.id, lambda b: completed(b) >= 20, timeout=60)
    client.batches.cancel(batch.id)
    server.kill()
    server.start()
    client = server.client()
    done = wait_for_batch(client, batch.id, timeout=60)
    assert done.status == "cancelled"
    _, errors = assert_exactly_once(client, done, ids)
    assert errors
    assert {line["error"]["code"] for line in errors.values() if line["response"] is None} == {"batch_cancelled"}


def test_kill_right_after_create_resumes(server_factory: Any, fake_upstream_factory: Any) -> None:
    server, fake = start(server_factory, fake_upstream_factory)
    fake.control(latency=0.0)
    client = server.client()
    ids = [f"v-{i}" for i in range(50)]
    batch = submit_batch(client, [chat_line(c, c) for c in ids])
    server.kill()
    server.start()
    client = server.client()
    done = wait_for_batch(client, batch.id, timeout=60)
    assert done.status == "completed"
    assert_exactly_once(client, done, ids)
