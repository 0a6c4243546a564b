"""Pause and resume, retry what failed and resume what never ran (extensions, docs/extensions.md), through the
in-process app and the official SDK's `client.post`, against the fake upstream, on SQLite and on PostgreSQL.

Not timed: every wait is a poll with a generous deadline; "dispatch stopped" is read off the fake upstream's own
request count, which must stay still once the requests in flight at the pause have come back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from appkeys import project_keys
from harness import FakeUpstream
from openai import OpenAI
from openai.types import Batch as SdkBatch
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.settings import Settings

TERMINAL = {"completed", "failed", "expired", "cancelled"}
WINDOW_SCALE = 4 / 3600  # a "1h" window lasts 4 s, "24h" 96 s


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path,
          fake_upstream_factory: Callable[[], FakeUpstream]) -> tuple[Settings, FakeUpstream]:
    fake = fake_upstream_factory()
    fake.control(latency=0.05)
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    # Four requests at a time, 50 ms each: about 80 requests/s; chunks of 20.
    return Settings(data_dir=tmp_path, poll_interval=0.05, upstream=fake.base_url, upstream_concurrency=4,
                    chunk_size=20, database_url=url, window_scale=WINDOW_SCALE), fake


@pytest.fixture
def clients(setup: tuple[Settings, FakeUpstream]) -> Iterator[tuple[OpenAI, OpenAI]]:
    """SDK clients of two projects."""
    settings, _ = setup
    with TestClient(create_app(settings)) as http:
        yield tuple(  # type: ignore[misc]
            OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0)
            for key in project_keys(settings, "alpha", "beta"))


def submit(sdk: OpenAI, n: int, tag: str, window: str = "24h",
           fake: Callable[[int], dict[str, Any] | None] = lambda i: None) -> SdkBatch:
    lines = []
    for i in range(n):
        body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": f"{tag} {i}"}]}
        if (x := fake(i)) is not None:
            body["x_fake"] = x
        lines.append({"custom_id": f"{tag}-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body})
    upload = sdk.files.create(file=(f"{tag}.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                              purpose="batch")
    return sdk.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window=window)


def wait(sdk: OpenAI, batch_id: str, until: Callable[[SdkBatch], bool], timeout: float = 180.0) -> SdkBatch:
    deadline = time.monotonic() + timeout
    batch = sdk.batches.retrieve(batch_id)
    while not until(batch) and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = sdk.batches.retrieve(batch_id)
    assert until(batch), batch
    return batch


def done(b: SdkBatch) -> int:
    return 0 if b.request_counts is None else b.request_counts.completed + b.request_counts.failed


def ended(b: SdkBatch) -> bool:
    return b.status in TERMINAL


def post(sdk: OpenAI, path: str, body: dict[str, Any] | None = None) -> SdkBatch:
    """An extension route, the way docs/extensions.md shows it."""
    return sdk.post(path, cast_to=SdkBatch, body=body or {})


def lines_of(sdk: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(x) for x in sdk.files.content(file_id).text.splitlines() if x.strip()]


def outcomes(sdk: OpenAI, b: SdkBatch) -> tuple[set[str], dict[str, str]]:
    """The custom_ids that succeeded, and each failed one's error code (each custom_id in one file, once)."""
    ok = [x["custom_id"] for x in lines_of(sdk, b.output_file_id)]
    bad = {x["custom_id"]: (x["error"] or {}).get("code") or "http_error"
           for x in lines_of(sdk, b.error_file_id)}
    assert len(ok) == len(set(ok)) and not set(ok) & set(bad)
    return set(ok), bad


def settle(fake: FakeUpstream, quiet: float = 2.0, timeout: float = 60.0) -> int:
    """The fake upstream's request count once it stopped moving for `quiet` seconds (the requests in flight at a
    pause come back within one latency; the slack is generous for a loaded machine)."""
    deadline = time.monotonic() + timeout
    last, since = fake.stats()["total"], time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the upstream kept receiving requests"
        time.sleep(0.1)
        now = fake.stats()["total"]
        if now != last:
            last, since = now, time.monotonic()
    return int(last)


def test_pause_stops_dispatch_and_resume_finishes_every_line_once(
    setup: tuple[Settings, FakeUpstream], clients: tuple[OpenAI, OpenAI],
) -> None:
    _, fake = setup
    alpha, _ = clients
    b = submit(alpha, 400, "p")
    wait(alpha, b.id, lambda x: x.status == "in_progress" and done(x) >= 20)
    paused = post(alpha, f"/batches/{b.id}/pause")
    assert paused.status == "in_progress"
    assert paused.model_extra is not None
    assert paused.model_extra["paused"] is True and isinstance(paused.model_extra["paused_at"], int)
    assert post(alpha, f"/batches/{b.id}/pause").model_extra == paused.model_extra  # pausing again: no change
    sent = settle(fake)
    time.sleep(1.5)
    assert fake.stats()["total"] == sent  # nothing more goes out while paused
    held = alpha.batches.retrieve(b.id)
    assert held.status == "in_progress" and held.model_extra is not None and held.model_extra["paused"] is True
    assert done(held) == sent < 400  # every request that went out was recorded; the rest wait
    resumed = post(alpha, f"/batches/{b.id}/resume")
    assert resumed.model_extra is not None and resumed.model_extra["paused"] is False
    final = wait(alpha, b.id, ended)
    assert final.status == "completed" and final.request_counts is not None
    assert final.request_counts.completed == 400
    ok, bad = outcomes(alpha, final)
    assert ok == {f"p-{i}" for i in range(400)} and not bad
    # The requests in flight at the pause finished (none was aborted and sent again): each line went out once.
    stats = fake.stats()
    assert stats["total"] == 400 and max(stats["by_key"].values()) == 1


def test_cancel_while_paused_and_resume_what_was_cancelled(
    setup: tuple[Settings, FakeUpstream], clients: tuple[OpenAI, OpenAI],
) -> None:
    alpha, _ = clients
    b = submit(alpha, 200, "c")
    wait(alpha, b.id, lambda x: x.status == "in_progress" and done(x) >= 10)
    post(alpha, f"/batches/{b.id}/pause")
    alpha.batches.cancel(b.id)
    first = wait(alpha, b.id, ended)
    assert first.status == "cancelled" and first.model_extra is not None and first.model_extra["paused"] is False
    ok1, bad1 = outcomes(alpha, first)
    assert set(bad1.values()) == {"batch_cancelled"} and len(ok1) + len(bad1) == 200
    with pytest.raises(openai.ConflictError):
        post(alpha, f"/batches/{b.id}/retry", {"only": "failed"})  # none failed: nothing to retry
    again = post(alpha, f"/batches/{b.id}/retry", {"only": "unfinished"})
    assert again.input_file_id == first.input_file_id and again.model_extra is not None
    assert again.model_extra["retried_from"] == b.id and again.model_extra["retry_only"] == "unfinished"
    assert post(alpha, f"/batches/{b.id}/retry", {"only": "unfinished"}).id == again.id  # asked twice: one retry
    second = wait(alpha, again.id, ended)
    assert second.status == "completed" and second.request_counts is not None
    assert second.request_counts.total == len(bad1)
    ok2, bad2 = outcomes(alpha, second)
    assert ok2 == set(bad1) and not bad2
    assert ok1 | ok2 == {f"c-{i}" for i in range(200)} and not ok1 & ok2


def test_retry_failed_lines_and_retry_the_retry_until_each_succeeds_once(
    setup: tuple[Settings, FakeUpstream], clients: tuple[OpenAI, OpenAI],
) -> None:
    alpha, _ = clients
    # Every seventh line's first two attempts are refused with a 400 (final: not retried); the third succeeds.
    b = submit(alpha, 90, "f", fake=lambda i: {"status": 400, "fail_times": 2} if i % 7 == 3 else None)
    first = wait(alpha, b.id, ended)
    assert first.status == "completed"
    ok1, bad1 = outcomes(alpha, first)
    assert set(bad1) == {f"f-{i}" for i in range(90) if i % 7 == 3}
    with pytest.raises(openai.ConflictError):
        post(alpha, f"/batches/{b.id}/retry", {"only": "unfinished"})  # everything ran
    retry = post(alpha, f"/batches/{b.id}/retry")  # `only` defaults to "failed"
    assert retry.model_extra is not None and retry.model_extra["retry_only"] == "failed"
    second = wait(alpha, retry.id, ended)
    assert second.status == "completed" and second.request_counts is not None
    assert second.request_counts.total == second.request_counts.failed == len(bad1)
    ok2, bad2 = outcomes(alpha, second)
    assert not ok2 and set(bad2) == set(bad1)
    # The retry's own error file holds only its lines: retrying it runs exactly those again.
    third = wait(alpha, post(alpha, f"/batches/{retry.id}/retry").id, ended)
    assert third.status == "completed" and third.request_counts is not None
    assert third.request_counts.total == third.request_counts.completed == len(bad1)
    ok3, bad3 = outcomes(alpha, third)
    assert ok3 == set(bad1) and not bad3
    assert ok1 | ok3 == {f"f-{i}" for i in range(90)} and not ok1 & ok3


def test_an_expiring_paused_batch_expires_and_its_unfinished_lines_run_again(
    setup: tuple[Settings, FakeUpstream], clients: tuple[OpenAI, OpenAI],
) -> None:
    alpha, _ = clients
    b = submit(alpha, 150, "e", window="1h")  # 4 s
    wait(alpha, b.id, lambda x: x.status == "in_progress" and done(x) >= 5)
    post(alpha, f"/batches/{b.id}/pause")  # the window keeps counting while paused
    first = wait(alpha, b.id, ended)
    assert first.status == "expired"
    ok1, bad1 = outcomes(alpha, first)
    assert set(bad1.values()) == {"batch_expired"} and len(ok1) + len(bad1) == 150
    retry = post(alpha, f"/batches/{b.id}/retry", {"only": "unfinished", "completion_window": "24h",
                                                   "metadata": {"why": "expired"}})
    assert retry.completion_window == "24h" and retry.metadata == {"why": "expired"}
    second = wait(alpha, retry.id, ended)
    assert second.status == "completed" and second.request_counts is not None
    assert second.request_counts.total == len(bad1)
    ok2, bad2 = outcomes(alpha, second)
    assert ok2 == set(bad1) and not bad2 and ok1 | ok2 == {f"e-{i}" for i in range(150)}


def test_wrong_states_bad_bodies_and_other_projects(
    setup: tuple[Settings, FakeUpstream], clients: tuple[OpenAI, OpenAI],
) -> None:
    alpha, beta = clients
    early = submit(alpha, 40, "v")  # paused at once: while it validates, or just after
    held = post(alpha, f"/batches/{early.id}/pause")
    assert held.status in ("validating", "in_progress") and held.model_extra is not None
    assert held.model_extra["paused"] is True
    wait(alpha, early.id, lambda x: x.status == "in_progress")
    time.sleep(1.5)
    still = alpha.batches.retrieve(early.id)
    assert still.status == "in_progress" and done(still) < 40 and still.model_extra is not None
    assert still.model_extra["paused"] is True
    post(alpha, f"/batches/{early.id}/resume")
    assert wait(alpha, early.id, ended).status == "completed"

    b = submit(alpha, 3, "w")
    for path in ("pause", "resume", "retry"):
        with pytest.raises(openai.NotFoundError):  # another project's batch does not exist for beta
            post(beta, f"/batches/{b.id}/{path}")
        with pytest.raises(openai.NotFoundError):
            post(alpha, f"/batches/batch_nope/{path}")
    with pytest.raises(openai.ConflictError):
        post(alpha, f"/batches/{b.id}/retry")  # not ended yet
    final = wait(alpha, b.id, ended)
    assert final.status == "completed"
    for path in ("pause", "resume"):
        with pytest.raises(openai.ConflictError) as e:
            post(alpha, f"/batches/{b.id}/{path}")
        assert e.value.status_code == 409 and "completed" in e.value.message
    with pytest.raises(openai.ConflictError):
        post(alpha, f"/batches/{b.id}/retry")  # no failed lines
    with pytest.raises(openai.BadRequestError) as bad:
        post(alpha, f"/batches/{b.id}/retry", {"only": "everything"})
    assert isinstance(bad.value.body, dict) and bad.value.body.get("param") == "only"
    with pytest.raises(openai.BadRequestError) as bad:
        post(alpha, f"/batches/{b.id}/retry", {"only": "failed", "completion_window": "2m"})
    assert isinstance(bad.value.body, dict) and bad.value.body.get("param") == "completion_window"
