"""One batch's page over plain HTTP: progress counts only the requests that ran, a finished batch's missing files
say "none", and errors are grouped by code with a count and one message each."""

from __future__ import annotations

import html
import re

from harness import BatchgateServer, FakeUpstream
from helpers import RawResponse, chat_line, raw, submit_batch, unique, wait_for_batch, wait_until
from openai import OpenAI

X = "\u00d7"  # the multiplication sign of the page's "code X count"
CONTEXT_400 = {"error": {"message": "This model's maximum context length is 8 tokens.",
                         "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}


def page(server: BatchgateServer, path: str) -> str:
    r: RawResponse = raw(server.url, "GET", path, api_key=None)
    assert r.status == 200, (r.status, r.body[:300])
    return html.unescape(r.body.decode())


def text_of(body: str, element_id: str) -> str:
    m = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', body, re.S)
    assert m, f"no #{element_id} in the page"
    return " ".join(re.sub(r"<[^>]+>", " ", m.group(2)).split())


def file_links(body: str) -> list[str]:
    """The Output and Errors entries of the Files card, as text."""
    found = re.findall(r"<li>((?:Output|Errors):.*?)</li>", body, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", f).split()) for f in found]


def percent(body: str) -> str:
    m = re.search(r'class="(?:small )?pct">([^<]*)<', body)
    assert m
    return m.group(1)


def test_a_cancelled_batch_shows_the_share_of_requests_that_ran(
    server: BatchgateServer, client: OpenAI, fake_upstream: FakeUpstream
) -> None:
    fast = [chat_line(unique("ran")) for _ in range(3)]
    hanging = [chat_line(c, x_fake={"hang": True, "key": c}) for c in (unique("never") for _ in range(7))]
    batch = submit_batch(client, fast + hanging)
    wait_until(client, batch.id, lambda b: b.request_counts.completed == 3, timeout=30)  # type: ignore[union-attr]
    client.batches.cancel(batch.id)
    done = wait_for_batch(client, batch.id, timeout=30)
    assert done.status == "cancelled"
    assert done.request_counts is not None and (done.request_counts.completed, done.request_counts.failed) == (3, 7)

    detail = page(server, f"/ui/batches/{batch.id}")
    assert percent(detail) == "30%"  # 3 of 10 ran; the 7 the cancel settled are not progress
    assert text_of(detail, "counts") == "3 completed · 0 failed · 7 not run (cancelled) · 10 total"
    assert text_of(detail, "upstream-errors") == "0"
    assert text_of(detail, "request-errors") == (
        f"batch_cancelled {X} 7 e.g. This request was not executed because the batch was cancelled."
    )
    listing = page(server, "/ui/fragments/batches")
    row = re.search(rf'<tr data-batch="{batch.id}".*?</tr>', listing, re.S)
    assert row
    assert percent(row.group(0)) == "30%"
    assert re.search(r'class="num counts">3 / 10<', row.group(0))


def test_a_finished_batch_without_files_says_none(server: BatchgateServer, client: OpenAI) -> None:
    failed = wait_for_batch(client, submit_batch(client, [chat_line("a", url="/v1/embeddings")]).id)
    assert failed.status == "failed"
    body = page(server, f"/ui/batches/{failed.id}")
    assert file_links(body) == ["Output: none", "Errors: none"]
    assert "none yet" not in body

    running = submit_batch(client, [chat_line(unique("slow"), x_fake={"latency": 30})])
    wait_until(client, running.id, lambda b: b.status == "in_progress", timeout=30)
    body = page(server, f"/ui/batches/{running.id}")
    assert file_links(body) == ["Output: none yet", "Errors: none yet"]
    client.batches.cancel(running.id)


def test_validation_errors_are_grouped_by_code(server: BatchgateServer, client: OpenAI) -> None:
    lines = [chat_line(f"u{i}", url="/v1/embeddings") for i in range(5)]
    lines.insert(2, chat_line("no-model", model=None))
    lines.append(chat_line("no-model-2", model=None))
    batch = wait_for_batch(client, submit_batch(client, lines).id)
    assert batch.status == "failed"
    assert batch.errors is not None and len(batch.errors.data or []) == 7
    body = page(server, f"/ui/batches/{batch.id}")
    assert body.count("does not match the batch endpoint") == 1  # one example, not one line per error
    assert text_of(body, "validation-errors") == (
        f"invalid_url {X} 5 lines 1, 2, 4, 5, 6 "
        "The URL provided for this request does not match the batch endpoint. "
        f"invalid_request {X} 2 lines 3, 7 Model parameter is required."
    )


def test_request_errors_are_grouped_by_code_with_one_example_each(
    server: BatchgateServer, client: OpenAI, fake_upstream: FakeUpstream
) -> None:
    lines = [chat_line(unique("ok")) for _ in range(3)]
    lines += [chat_line(unique("long"), x_fake={"status": 400, "body": CONTEXT_400}) for _ in range(4)]
    lines += [chat_line(unique("unprocessable"), x_fake={"status": 422}) for _ in range(2)]
    batch = wait_for_batch(client, submit_batch(client, lines).id)
    assert batch.status == "completed"
    assert batch.request_counts is not None and batch.request_counts.failed == 6
    body = page(server, f"/ui/batches/{batch.id}")
    assert text_of(body, "request-errors") == (
        f"context_length_exceeded {X} 4 e.g. This model's maximum context length is 8 tokens. "
        f"invalid_request_error {X} 2 e.g. fake upstream error 422"
    )
    assert text_of(body, "upstream-errors") == "6"
    assert percent(body) == "100%"
