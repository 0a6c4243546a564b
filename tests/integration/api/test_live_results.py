"""Following a batch's results while it runs (GET /v1/batches/{id}/results, an extension) through the official SDK's
`client.get`, in the in-process app against the fake upstream, on SQLite and on PostgreSQL: every line exactly once
across the followed pages and equal to the final files, cursors that resume, long polls that return when a line is
recorded, the end of a cancelled batch, project scoping and bad parameters."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from appkeys import project_keys
from harness import FakeUpstream
from helpers import chat_line, jsonl
from openai import OpenAI
from openai.types import Batch as SdkBatch
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.settings import Settings

TERMINAL = {"completed", "failed", "expired", "cancelled"}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path,
             fake_upstream_factory: Callable[[], FakeUpstream]) -> Settings:
    fake = fake_upstream_factory()
    fake.control(latency=0.02)
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    # Four requests at a time, 20 ms each: about 200 requests/s, chunks of 25 requests.
    return Settings(data_dir=tmp_path, poll_interval=0.05, upstream=fake.base_url, upstream_concurrency=4,
                    chunk_size=25, database_url=url)


@pytest.fixture
def clients(settings: Settings) -> Iterator[tuple[OpenAI, OpenAI]]:
    """SDK clients of two projects: alpha and beta."""
    switch_interval = sys.getswitchinterval()
    try:
        with TestClient(create_app(settings)) as http:
            yield tuple(  # type: ignore[misc]
                OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0)
                for key in project_keys(settings, "alpha", "beta"))
    finally:
        sys.setswitchinterval(switch_interval)


def submit(sdk: OpenAI, lines: list[dict[str, Any]]) -> SdkBatch:
    upload = sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    return sdk.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")


def page(sdk: OpenAI, batch_id: str, **params: Any) -> dict[str, Any]:
    """One page of the batch's results, as a client calls it with the official SDK."""
    got: dict[str, Any] = sdk.get(f"/batches/{batch_id}/results", cast_to=dict, options={"params": params})
    return got


def follow(sdk: OpenAI, batch_id: str, after: str = "0", limit: int = 1000) -> tuple[list[dict[str, Any]], set[str]]:
    """Every line after `after` until the batch ends (long polls), and the batch statuses the pages came with."""
    lines: list[dict[str, Any]] = []
    statuses: set[str] = set()
    cursor = after
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = page(sdk, batch_id, after=cursor, limit=limit, wait=10)
        lines += got["data"]
        if got["data"]:
            statuses.add(got["batch_status"])
        assert int(got["cursor"]) >= int(cursor)
        cursor = got["cursor"]
        if got["done"]:
            return lines, statuses
    raise AssertionError("the batch did not end")


def file_lines(sdk: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    return [] if file_id is None else [json.loads(x) for x in sdk.files.content(file_id).text.splitlines()]


def by_custom_id(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        assert line["custom_id"] not in out, f"{line['custom_id']} twice"
        out[line["custom_id"]] = line
    return out


def mixed(n: int) -> list[dict[str, Any]]:
    """n chat lines; every tenth answers 400 (an error-file line)."""
    return [chat_line(f"r{i}", model="m", x_fake={"status": 400} if i % 10 == 3 else None) for i in range(n)]


def test_following_a_running_batch_gives_every_line_once_as_in_the_files(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, _ = clients
    batch = submit(alpha, mixed(400))
    followed, statuses = follow(alpha, batch.id)
    final = alpha.batches.retrieve(batch.id)
    assert final.status == "completed"
    assert "in_progress" in statuses  # lines came while the batch ran, not only at its end
    got = by_custom_id(followed)
    assert sorted(got) == sorted(f"r{i}" for i in range(400))
    out, err = file_lines(alpha, final.output_file_id), file_lines(alpha, final.error_file_id)
    assert len(err) == 40
    assert got == by_custom_id(out + err)  # the same lines, ids and all, as the output and error files
    # After the end the whole feed reads again from the start, and a finished read says done at once.
    again = page(alpha, batch.id, limit=10_000)
    assert again["done"] is False and len(again["data"]) == 400
    last = page(alpha, batch.id, after=again["cursor"], wait=30)
    assert last["data"] == [] and last["done"] is True and last["batch_status"] == "completed"
    assert (last["output_file_id"], last["error_file_id"]) == (final.output_file_id, final.error_file_id)


def test_the_cursor_resumes_where_a_page_ended(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, _ = clients
    batch = submit(alpha, mixed(120))
    first, _ = follow(alpha, batch.id, limit=7)  # many small pages while it runs
    pages, cursor = [], "0"
    while True:
        got = page(alpha, batch.id, after=cursor, limit=13)
        pages.append(got["data"])
        cursor = got["cursor"]
        if not got["has_more"]:
            break
    assert len(pages) == 10  # 120 lines, 13 a page
    assert [x for p in pages for x in p] == page(alpha, batch.id, limit=1000)["data"]
    assert by_custom_id(first) == by_custom_id([x for p in pages for x in p])
    # from the cursor after the fourth page: exactly the rest
    middle = page(alpha, batch.id, limit=52)
    rest, _ = follow(alpha, batch.id, after=middle["cursor"])
    assert [x["custom_id"] for x in middle["data"] + rest] == [x["custom_id"] for p in pages for x in p]


def test_a_long_poll_returns_when_a_line_is_recorded(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, _ = clients
    batch = submit(alpha, [chat_line("slow", model="m", x_fake={"latency": 1.5})])
    started = time.monotonic()
    got = page(alpha, batch.id, wait=60)
    waited = time.monotonic() - started
    # It waited for the line (the upstream takes 1.5 s), and came back with it long before the 60 s were up.
    assert [x["custom_id"] for x in got["data"]] == ["slow"]
    assert 1.0 <= waited < 30
    # a short wait with nothing new comes back empty, with the cursor unchanged
    empty = page(alpha, batch.id, after=got["cursor"], wait=0)
    assert empty["data"] == [] and empty["cursor"] == got["cursor"]


def test_a_cancelled_batch_ends_with_its_cancelled_lines(clients: tuple[OpenAI, OpenAI], settings: Settings) -> None:
    alpha, _ = clients
    batch = submit(alpha, [chat_line(f"c{i}", model="m", x_fake={"latency": 0.05}) for i in range(600)])
    seen = page(alpha, batch.id, wait=30)
    assert seen["data"]  # it has started
    alpha.batches.cancel(batch.id)
    rest, _ = follow(alpha, batch.id, after=seen["cursor"])
    final = alpha.batches.retrieve(batch.id)
    assert final.status == "cancelled"
    got = by_custom_id(seen["data"] + rest)
    assert sorted(got) == sorted(f"c{i}" for i in range(600))
    assert got == by_custom_id(file_lines(alpha, final.output_file_id) + file_lines(alpha, final.error_file_id))
    assert any(x["error"] and x["error"]["code"] == "batch_cancelled" for x in got.values())


def test_other_projects_get_404_and_bad_parameters_400(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, beta = clients
    batch = submit(alpha, mixed(3))
    with pytest.raises(openai.NotFoundError):
        page(beta, batch.id)
    with pytest.raises(openai.NotFoundError):
        page(alpha, "batch_nope")
    for bad in ({"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": "10001"}, {"wait": "61"},
                {"format": "xml"}):
        with pytest.raises(openai.BadRequestError) as e:
            page(alpha, batch.id, **bad)
        assert e.value.body["param"] == next(iter(bad))  # type: ignore[index]
    follow(alpha, batch.id)


def test_jsonl_format_answers_the_lines_with_the_facts_in_headers(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, _ = clients
    batch = submit(alpha, mixed(20))
    follow(alpha, batch.id)
    raw = alpha.get(f"/batches/{batch.id}/results", cast_to=httpx2.Response, options={"params": {"format": "jsonl"}})
    assert raw.headers["content-type"] == "application/jsonl"
    assert raw.headers["x-batchgate-done"] == "false" and raw.headers["x-batchgate-batch-status"] == "completed"
    lines = [json.loads(x) for x in raw.text.splitlines()]
    assert sorted(x["custom_id"] for x in lines) == sorted(f"r{i}" for i in range(20))
    end = alpha.get(f"/batches/{batch.id}/results", cast_to=httpx2.Response,
                    options={"params": {"format": "jsonl", "after": raw.headers["x-batchgate-cursor"]}})
    assert end.text == "" and end.headers["x-batchgate-done"] == "true"


def test_server_sent_events_follow_the_batch_to_its_end(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, beta = clients
    batch = submit(alpha, mixed(300))
    events = alpha.get(f"/batches/{batch.id}/results", cast_to=object, stream=True,
                       stream_cls=openai.Stream[object], options={"params": {"stream": "true", "limit": 50}})
    pages: list[dict[str, Any]] = list(events)  # type: ignore[arg-type]
    assert pages[-1]["done"] is True and all(not p["done"] for p in pages[:-1])
    assert any(p["batch_status"] == "in_progress" and p["data"] for p in pages)  # pushed while it ran
    assert all(p["data"] for p in pages[:-1])  # an event per page with lines, then the last one
    cursors = [int(p["cursor"]) for p in pages]
    assert cursors == sorted(cursors)
    final = alpha.batches.retrieve(batch.id)
    followed = by_custom_id([x for p in pages for x in p["data"]])
    assert followed == by_custom_id(file_lines(alpha, final.output_file_id) + file_lines(alpha, final.error_file_id))
    # resumed from a cursor, a stream of a finished batch has only the rest; another project's is a 404
    resumed = list(alpha.get(f"/batches/{batch.id}/results", cast_to=object, stream=True,
                             stream_cls=openai.Stream[object],
                             options={"params": {"stream": "true", "after": pages[0]["cursor"]}}))
    assert sum(len(p["data"]) for p in resumed) == 300 - len(pages[0]["data"])  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        beta.get(f"/batches/{batch.id}/results", cast_to=object, stream=True, stream_cls=openai.Stream[object],
                 options={"params": {"stream": "true"}})
