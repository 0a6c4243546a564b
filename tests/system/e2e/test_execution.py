"""Batches really execute against the fake upstream: outputs, errors, usage, retries, transport failures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from harness import BatchgateServer, FakeUpstream
from helpers import (
    CHAT,
    CHAT_MODEL,
    COMPLETIONS,
    EMBED_MODEL,
    EMBEDDINGS,
    MODERATIONS,
    RESPONSES,
    assert_exactly_once,
    chat_line,
    embedding_line,
    jsonl,
    run_batch,
    submit_batch,
    unique,
    wait_for_batch,
    wait_until,
)
from openai import OpenAI

MAX_ATTEMPTS = 4  # the session server's BATCHGATE_MAX_ATTEMPTS
UPSTREAM_400 = {
    "error": {
        "message": "This model's maximum context length is 8 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}


def keyed(prefix: str, **x_fake: Any) -> tuple[str, dict[str, Any]]:
    key = unique(prefix)
    return key, chat_line(key, x_fake={"key": key, **x_fake})


def test_chat_happy_path(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    ids = [unique("chat") for _ in range(12)]
    batch = run_batch(client, [chat_line(cid, f"hello {cid}") for cid in ids])
    assert batch.status == "completed"
    assert batch.model == CHAT_MODEL
    assert batch.errors is None
    assert batch.error_file_id is None
    outputs, _ = assert_exactly_once(client, batch, ids)

    stats = fake_upstream.stats()
    usage_in = usage_out = 0
    for cid in ids:
        line = outputs[cid]
        assert re.match(r"^batch_req_\w+$", line["id"]), line["id"]
        assert line["error"] is None
        response = line["response"]
        assert response["status_code"] == 200
        assert response["request_id"] in stats["request_ids_by_key"][f"hello {cid}"]
        body = response["body"]
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == f"echo: hello {cid}"
        usage_in += body["usage"]["prompt_tokens"]
        usage_out += body["usage"]["completion_tokens"]
    assert len({line["id"] for line in outputs.values()}) == len(ids)

    assert batch.usage is not None
    assert batch.usage.input_tokens == usage_in
    assert batch.usage.output_tokens == usage_out
    assert batch.usage.total_tokens == usage_in + usage_out
    assert batch.usage.input_tokens_details.cached_tokens == 0
    assert batch.usage.output_tokens_details.reasoning_tokens == 0

    out_file = client.files.retrieve(batch.output_file_id or "")
    assert out_file.purpose == "batch_output"
    assert out_file.filename == f"batch_{batch.id}_output.jsonl"
    assert out_file.status == "processed"
    for stamp in ("in_progress_at", "finalizing_at", "completed_at"):
        assert isinstance(getattr(batch, stamp), int), stamp
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at  # type: ignore[operator]
    assert batch.failed_at is None and batch.cancelled_at is None and batch.expired_at is None


def test_embeddings_batch(client: OpenAI) -> None:
    ids = [unique("emb") for _ in range(6)]
    lines = [embedding_line(cid, [f"{cid} one", f"{cid} two words"]) for cid in ids]
    batch = run_batch(client, lines, endpoint=EMBEDDINGS)
    assert batch.status == "completed"
    assert batch.model == EMBED_MODEL
    outputs, _ = assert_exactly_once(client, batch, ids)
    total = 0
    for cid in ids:
        body = outputs[cid]["response"]["body"]
        assert body["object"] == "list"
        assert len(body["data"]) == 2
        total += body["usage"]["prompt_tokens"]
    assert batch.usage is not None
    assert batch.usage.input_tokens == total
    assert batch.usage.output_tokens == 0
    assert batch.usage.total_tokens == total


@pytest.mark.parametrize(
    ("endpoint", "body", "object_name"),
    [
        (COMPLETIONS, {"model": "gpt-3.5-turbo-instruct", "prompt": "say hi"}, "text_completion"),
        (RESPONSES, {"model": "gpt-4o-mini", "input": "say hi"}, "response"),
        (MODERATIONS, {"model": "omni-moderation-latest", "input": "say hi"}, None),
    ],
)
def test_other_endpoints(client: OpenAI, endpoint: str, body: dict[str, Any], object_name: str | None) -> None:
    ids = [unique("ep") for _ in range(3)]
    lines = [{"custom_id": cid, "method": "POST", "url": endpoint, "body": body} for cid in ids]
    batch = run_batch(client, lines, endpoint=endpoint)
    assert batch.status == "completed", batch
    assert batch.model == body["model"]
    outputs, _ = assert_exactly_once(client, batch, ids)
    for cid in ids:
        assert outputs[cid]["response"]["status_code"] == 200
        if object_name:
            assert outputs[cid]["response"]["body"]["object"] == object_name
    assert batch.usage is not None
    if endpoint == RESPONSES:
        usages = [outputs[c]["response"]["body"]["usage"] for c in ids]
        assert batch.usage.input_tokens == sum(u["input_tokens"] for u in usages)
        assert batch.usage.output_tokens == sum(u["output_tokens"] for u in usages)
        assert batch.usage.total_tokens == sum(u["total_tokens"] for u in usages)
    if endpoint == COMPLETIONS:
        usages = [outputs[c]["response"]["body"]["usage"] for c in ids]
        assert batch.usage.input_tokens == sum(u["prompt_tokens"] for u in usages)
        assert batch.usage.output_tokens == sum(u["completion_tokens"] for u in usages)


def test_permanent_upstream_error_goes_to_error_file(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    ok = [unique("ok") for _ in range(3)]
    bad_key, bad_line = keyed("bad", status=400, body=UPSTREAM_400)
    batch = run_batch(client, [chat_line(cid) for cid in ok] + [bad_line])
    assert batch.status == "completed"
    outputs, errors = assert_exactly_once(client, batch, [*ok, bad_key])
    assert set(outputs) == set(ok)
    line = errors[bad_key]
    assert line["id"].startswith("batch_req_")
    assert line["error"] is None
    assert line["response"]["status_code"] == 400
    assert line["response"]["body"] == UPSTREAM_400
    assert line["response"]["request_id"] in fake_upstream.stats()["request_ids_by_key"][bad_key]
    assert fake_upstream.stats()["by_key"][bad_key] == 1  # 4xx is not retried
    err_file = client.files.retrieve(batch.error_file_id or "")
    assert err_file.purpose == "batch_output"
    assert err_file.filename == f"batch_{batch.id}_error.jsonl"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_not_retried(client: OpenAI, fake_upstream: FakeUpstream, status: int) -> None:
    key, line = keyed("4xx", status=status)
    batch = run_batch(client, [line])
    _, errors = assert_exactly_once(client, batch, [key])
    assert errors[key]["response"]["status_code"] == status
    assert fake_upstream.stats()["by_key"][key] == 1


def test_all_failed_has_no_output_file(client: OpenAI) -> None:
    keys_lines = [keyed("allbad", status=400, body=UPSTREAM_400) for _ in range(3)]
    batch = run_batch(client, [line for _, line in keys_lines])
    assert batch.status == "completed"
    assert batch.output_file_id is None
    assert batch.error_file_id is not None
    assert_exactly_once(client, batch, [k for k, _ in keys_lines])


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_errors_are_retried(client: OpenAI, fake_upstream: FakeUpstream, status: int) -> None:
    key, line = keyed("retry", fail_times=2, status=status)
    batch = run_batch(client, [line])
    outputs, _ = assert_exactly_once(client, batch, [key])
    assert outputs[key]["response"]["status_code"] == 200
    assert fake_upstream.stats()["by_key"][key] == 3


def test_retries_give_up_after_max_attempts(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    body = {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}}
    key, line = keyed("exhaust", fail_times=100, status=503, body=body)
    fine = unique("fine")
    batch = run_batch(client, [line, chat_line(fine)])
    outputs, errors = assert_exactly_once(client, batch, [key, fine])
    assert set(outputs) == {fine}
    assert errors[key]["response"]["status_code"] == 503
    assert errors[key]["response"]["body"] == body
    assert errors[key]["error"] is None
    assert fake_upstream.stats()["by_key"][key] == MAX_ATTEMPTS


def test_retry_after_is_honoured(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    key, line = keyed("ra", fail_times=1, status=429, retry_after=2)
    batch = run_batch(client, [line])
    outputs, _ = assert_exactly_once(client, batch, [key])
    assert outputs[key]["response"]["status_code"] == 200
    times = fake_upstream.stats()["times_by_key"][key]
    assert len(times) == 2
    assert times[1] - times[0] >= 1.9  # waited for Retry-After, not just the 0.05 s backoff


def test_dropped_connection_is_retried(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    key, line = keyed("drop", drop_times=2)
    batch = run_batch(client, [line])
    outputs, _ = assert_exactly_once(client, batch, [key])
    assert outputs[key]["response"]["status_code"] == 200
    assert fake_upstream.stats()["by_key"][key] == 3


def test_always_dropped_is_a_connection_error(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    key, line = keyed("dropall", drop_times=100)
    batch = run_batch(client, [line])
    _, errors = assert_exactly_once(client, batch, [key])
    assert errors[key]["response"] is None
    assert errors[key]["error"]["code"] == "upstream_connection_error"
    assert errors[key]["error"]["message"]
    assert fake_upstream.stats()["by_key"][key] == MAX_ATTEMPTS


def test_global_error_rate(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.control(error_rate=0.3, seed=11)
    ids = [unique("rate") for _ in range(40)]
    batch = run_batch(client, [chat_line(cid, cid) for cid in ids], timeout=90)
    assert batch.status == "completed"
    outputs, errors = assert_exactly_once(client, batch, ids)
    stats = fake_upstream.stats()
    assert stats["total"] > len(ids)  # some were retried
    assert stats["statuses"]["500"] > 0
    for cid in errors:
        assert errors[cid]["response"]["status_code"] == 500
        assert stats["by_key"][cid] == MAX_ATTEMPTS
    for cid in outputs:
        assert stats["by_key"][cid] <= MAX_ATTEMPTS


def test_global_429_rate_with_retry_after(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    fake_upstream.control(rate_429=0.3, retry_after=0, seed=3)
    ids = [unique("r429") for _ in range(20)]
    batch = run_batch(client, [chat_line(cid, cid) for cid in ids], timeout=90)
    assert batch.status == "completed"
    assert_exactly_once(client, batch, ids)
    assert fake_upstream.stats()["statuses"]["429"] > 0


def test_request_counts_move_while_running(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    fast = [unique("fast") for _ in range(5)]
    slow = [unique("slow") for _ in range(3)]
    lines = [chat_line(c) for c in fast] + [chat_line(c, x_fake={"latency": 3.0}) for c in slow]
    batch = submit_batch(client, lines)
    seen = wait_until(
        client,
        batch.id,
        lambda b: b.status == "in_progress" and b.request_counts.completed >= 5,  # type: ignore[union-attr]
        timeout=30,
    )
    assert seen.request_counts is not None
    assert seen.request_counts.total == 8
    assert seen.request_counts.completed < 8
    done = wait_for_batch(client, batch.id)
    assert done.status == "completed"
    assert_exactly_once(client, done, fast + slow)


def test_custom_id_reuse_across_batches(client: OpenAI) -> None:
    cid = unique("reuse")
    for _ in range(2):
        batch = run_batch(client, [chat_line(cid)])
        assert batch.status == "completed"
        assert_exactly_once(client, batch, [cid])


def test_upload_api_file_as_batch_input(client: OpenAI) -> None:
    ids = [unique("up") for _ in range(4)]
    data = jsonl([chat_line(cid) for cid in ids])
    upload = client.uploads.upload_file_chunked(
        file=data,
        filename="in.jsonl",
        bytes=len(data),
        mime_type="application/jsonl",
        purpose="batch",
        part_size=50,
    )
    assert upload.file is not None
    batch = client.batches.create(input_file_id=upload.file.id, endpoint=CHAT, completion_window="24h")
    done = wait_for_batch(client, batch.id)
    assert done.status == "completed"
    assert_exactly_once(client, done, ids)


@pytest.fixture(scope="module")
def timeout_server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    yield module_server_factory(env={"BATCHGATE_REQUEST_TIMEOUT": "1", "BATCHGATE_MAX_ATTEMPTS": "2"})


def test_hanging_upstream_times_out(timeout_server: BatchgateServer, fake_upstream: FakeUpstream) -> None:
    client = timeout_server.client()
    hang_key, hang_line = keyed("hang", hang=True)
    once_key, once_line = keyed("hang-once", hang_times=1)
    ok = unique("ok")
    batch = run_batch(client, [hang_line, once_line, chat_line(ok)], timeout=60)
    assert batch.status == "completed"
    outputs, errors = assert_exactly_once(client, batch, [hang_key, once_key, ok])
    assert errors[hang_key]["response"] is None
    assert errors[hang_key]["error"]["code"] == "upstream_timeout"
    assert outputs[once_key]["response"]["status_code"] == 200
    stats = fake_upstream.stats()
    assert stats["by_key"][hang_key] == 2
    assert stats["by_key"][once_key] == 2


def test_output_expires_after(client: OpenAI) -> None:
    ok, (_, bad_line) = unique("oea"), keyed("oea-bad", status=400)
    batch = run_batch(client, [chat_line(ok), bad_line], output_expires_after={"anchor": "created_at", "seconds": 7200})
    assert batch.status == "completed"
    for file_id in (batch.output_file_id, batch.error_file_id):
        f = client.files.retrieve(file_id or "")
        assert f.expires_at == f.created_at + 7200


def test_many_lines_many_chunks(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    ids = [unique("many") for _ in range(1200)]
    bad = set(ids[::97])
    lines = [chat_line(c, x_fake={"status": 400, "key": c} if c in bad else None) for c in ids]
    batch = run_batch(client, lines, timeout=120)
    assert batch.status == "completed"
    _, errors = assert_exactly_once(client, batch, ids)
    assert set(errors) == bad
    by_key = fake_upstream.stats()["by_key"]
    assert all(by_key[c] == 1 for c in ids)  # nothing sent twice without a reason


def test_concurrent_batches_do_not_mix(client: OpenAI) -> None:
    groups = [[unique(f"g{g}") for _ in range(40)] for g in range(3)]
    batches = [submit_batch(client, [chat_line(c, c) for c in group]) for group in groups]
    for batch, group in zip(batches, groups, strict=True):
        done = wait_for_batch(client, batch.id)
        assert done.status == "completed"
        outputs, _ = assert_exactly_once(client, done, group)
        assert all(outputs[c]["response"]["body"]["choices"][0]["message"]["content"] == f"echo: {c}" for c in group)


@pytest.fixture(scope="module")
def short_overload_server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    yield module_server_factory(env={"BATCHGATE_OVERLOAD_MAX_SECONDS": "1", "BATCHGATE_MAX_ATTEMPTS": "3"})


@pytest.mark.parametrize("retry_after", [None, 0])
def test_persistent_429_ends_in_the_error_file(
    short_overload_server: BatchgateServer, fake_upstream: FakeUpstream, retry_after: int | None
) -> None:
    client = short_overload_server.client()
    body = {"error": {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    x_fake: dict[str, Any] = {"fail_times": 10_000, "status": 429, "body": body}
    if retry_after is not None:
        x_fake["retry_after"] = retry_after
    key, line = keyed("p429", **x_fake)
    batch = run_batch(client, [line], timeout=60)
    _, errors = assert_exactly_once(client, batch, [key])
    assert errors[key]["response"]["status_code"] == 429
    assert errors[key]["response"]["body"] == body
    assert errors[key]["error"] is None
    assert fake_upstream.stats()["by_key"][key] >= 3


def test_503_with_retry_after_is_honoured(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    key, line = keyed("ra503", fail_times=1, status=503, retry_after=2)
    batch = run_batch(client, [line])
    outputs, _ = assert_exactly_once(client, batch, [key])
    assert outputs[key]["response"]["status_code"] == 200
    times = fake_upstream.stats()["times_by_key"][key]
    assert times[1] - times[0] >= 1.9


def test_unicode_and_long_custom_ids(client: OpenAI) -> None:
    ids = ["ünïcødé-✓-" + unique("u"), "emoji-🚀-" + unique("e"), "x" * 512, 'quote"and\\slash ' + unique("q")]
    batch = run_batch(client, [chat_line(c, f"text {i}") for i, c in enumerate(ids)])
    assert batch.status == "completed"
    outputs, _ = assert_exactly_once(client, batch, ids)
    assert outputs[ids[1]]["response"]["body"]["choices"][0]["message"]["content"] == "echo: text 1"


def test_output_files_listed_as_batch_output(client: OpenAI) -> None:
    batch = run_batch(client, [chat_line(unique("lo"))])
    listed = {f.id for f in client.files.list(purpose="batch_output")}
    assert batch.output_file_id in listed
    assert batch.input_file_id not in listed
