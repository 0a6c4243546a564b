"""Input-file validation: the batch goes `failed` with one error per bad line (1-based, in line order)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from helpers import (
    CHAT,
    CHAT_MODEL,
    EMBEDDINGS,
    assert_exactly_once,
    chat_line,
    embedding_line,
    jsonl,
    submit_batch,
    unique,
    wait_for_batch,
)
from openai import OpenAI


def failed_batch(client: OpenAI, lines: list[Any] | bytes, endpoint: str = CHAT) -> Any:
    batch = wait_for_batch(client, submit_batch(client, lines, endpoint=endpoint).id)
    assert batch.status == "failed", batch
    assert isinstance(batch.failed_at, int)
    assert batch.in_progress_at is None
    assert batch.output_file_id is None and batch.error_file_id is None
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        0,
        0,
        0,
    )
    assert batch.errors is not None
    assert batch.errors.object == "list"
    for error in batch.errors.data:
        assert isinstance(error.message, str) and error.message
    return batch


def errors_of(batch: Any) -> list[tuple[str | None, str | None, int | None]]:
    return [(e.code, e.param, e.line) for e in batch.errors.data]


def ok(cid: str = "ok") -> dict[str, Any]:
    return chat_line(cid)


def without(line: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k != key}


def with_body(line: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {k: v for k, v in line["body"].items() if k not in changes or changes[k] is not None}
    body.update({k: v for k, v in changes.items() if v is not None})
    return {**line, "body": body}


CASES: list[tuple[str, Any, tuple[str, str | None]]] = [
    ("invalid-json", "{this is not json", ("invalid_json_line", None)),
    ("json-array-line", "[1, 2, 3]", ("invalid_json_line", None)),
    ("missing-custom-id", without(chat_line("c1"), "custom_id"), ("missing_required_parameter", "custom_id")),
    ("missing-method", without(chat_line("c2"), "method"), ("missing_required_parameter", "method")),
    ("missing-url", without(chat_line("c3"), "url"), ("missing_required_parameter", "url")),
    ("missing-body", without(chat_line("c4"), "body"), ("missing_required_parameter", "body")),
    ("wrong-url", chat_line("c5", url="/v1/embeddings"), ("invalid_url", "url")),
    ("stream", chat_line("c6", stream=True), ("streaming_unsupported", "body.stream")),
    ("missing-model", with_body(chat_line("c7"), model=None), ("invalid_request", "body.model")),
    ("missing-messages", with_body(chat_line("c8"), messages=None), ("invalid_request", "body.messages")),
    ("duplicate", chat_line("ok"), ("duplicate_custom_id", "custom_id")),
    ("model-mismatch", chat_line("c9", model="gpt-4o"), ("model_mismatch", "body.model")),
    ("method-get", {**chat_line("c10"), "method": "GET"}, ("invalid_value", "method")),
    ("custom-id-int", {**chat_line("c11"), "custom_id": 7}, ("invalid_type", "custom_id")),
    ("body-list", {**chat_line("c12"), "body": ["model"]}, ("invalid_type", "body")),
    ("url-not-string", {**chat_line("c13"), "url": 5}, ("invalid_type", "url")),
]


@pytest.mark.parametrize(("name", "bad", "expected"), CASES, ids=[c[0] for c in CASES])
def test_single_bad_line(client: OpenAI, name: str, bad: Any, expected: tuple[str, str | None]) -> None:
    batch = failed_batch(client, [ok(), bad, chat_line("ok-2")])
    assert errors_of(batch) == [(*expected, 2)]


def test_every_bad_line_reported_in_order(client: OpenAI) -> None:
    lines = [ok()] + [bad for _, bad, _ in CASES]
    batch = failed_batch(client, lines)
    assert errors_of(batch) == [(*expected, i + 2) for i, (_, _, expected) in enumerate(CASES)]


def test_valid_lines_are_not_reported(client: OpenAI) -> None:
    lines = [ok(), chat_line("a"), "{bad", chat_line("b"), without(chat_line("c"), "url"), chat_line("d")]
    batch = failed_batch(client, lines)
    assert errors_of(batch) == [("invalid_json_line", None, 3), ("missing_required_parameter", "url", 5)]


def test_line_numbers_count_blank_lines(client: OpenAI) -> None:
    content = (json.dumps(ok()) + "\n\n   \n{bad json\n").encode()
    batch = failed_batch(client, content)
    assert errors_of(batch) == [("invalid_json_line", None, 4)]


def test_blank_lines_are_skipped(client: OpenAI) -> None:
    ids = [unique("blank") for _ in range(3)]
    content = (
        "\n"
        + json.dumps(chat_line(ids[0]))
        + "\n\n"
        + json.dumps(chat_line(ids[1]))
        + "\r\n  \n"
        + json.dumps(chat_line(ids[2]))
    ).encode()  # no trailing newline either
    batch = wait_for_batch(client, submit_batch(client, content).id)
    assert batch.status == "completed", batch
    assert_exactly_once(client, batch, ids)


def test_embeddings_missing_input(client: OpenAI) -> None:
    bad = embedding_line("e2")
    del bad["body"]["input"]
    batch = failed_batch(client, [embedding_line("e1"), bad], endpoint=EMBEDDINGS)
    assert errors_of(batch) == [("invalid_request", "body.input", 2)]


def test_url_must_match_endpoint(client: OpenAI) -> None:
    lines = [embedding_line("e1"), embedding_line("e2")]
    batch = failed_batch(client, lines, endpoint=CHAT)
    assert errors_of(batch) == [("invalid_url", "url", 1), ("invalid_url", "url", 2)]


def test_error_cap_with_final_entry(client: OpenAI) -> None:
    lines = [ok()] + [without(chat_line(f"m{i}"), "custom_id") for i in range(150)]
    batch = failed_batch(client, lines)
    data = batch.errors.data
    assert len(data) == 101
    assert [(e.code, e.param, e.line) for e in data[:100]] == [
        ("missing_required_parameter", "custom_id", n) for n in range(2, 102)
    ]
    assert data[100].code == "too_many_errors"
    assert "50" in (data[100].message or "")  # says how many more (150 - 100)


def test_too_many_requests(client: OpenAI) -> None:
    line = json.dumps(chat_line("X"))
    content = "\n".join(line.replace('"X"', f'"r{i}"', 1) for i in range(50_001)).encode()
    batch = failed_batch(client, content)
    assert "too_many_tasks" in [e.code for e in batch.errors.data]


def test_exactly_50000_requests_accepted(client: OpenAI) -> None:
    line = json.dumps(chat_line("X", x_fake={"status": 400}))
    content = "\n".join(line.replace('"X"', f'"r{i}"', 1) for i in range(50_000)).encode()
    batch = submit_batch(client, content)
    seen = wait_for_batch(client, batch.id, until=frozenset({"in_progress", "failed", "completed"}), timeout=120)
    assert seen.status != "failed", seen.errors
    client.batches.cancel(batch.id)
    wait_for_batch(client, batch.id, timeout=120)


def test_too_many_embedding_inputs(client: OpenAI) -> None:
    lines = [embedding_line("e1", ["a"] * 25_000), embedding_line("e2", ["b"] * 25_001)]
    batch = failed_batch(client, lines, endpoint=EMBEDDINGS)
    assert "too_many_tasks" in [e.code for e in batch.errors.data]


@pytest.mark.slow
def test_file_too_large(client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    first = json.dumps(chat_line("big-0")).encode() + b"\n"
    filler_line = json.dumps(chat_line("big-1", "x" * (1024 * 1024))).encode() + b"\n"
    with path.open("wb") as out:
        out.write(first)
        written = len(first)
        i = 1
        while written <= 200 * 1024 * 1024:
            chunk = filler_line.replace(b'"big-1"', f'"big-{i}"'.encode(), 1)
            out.write(chunk)
            written += len(chunk)
            i += 1
    assert path.stat().st_size > 209_715_200
    file_id = client.files.create(file=path, purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    done = wait_for_batch(client, batch.id, timeout=120)
    assert done.status == "failed"
    assert done.errors is not None
    assert "file_too_large" in [e.code for e in done.errors.data]


def test_empty_file(client: OpenAI) -> None:
    data = b"\n\n  \n"
    upload = client.uploads.create(
        filename="empty.jsonl", purpose="batch", bytes=len(data), mime_type="application/jsonl"
    )
    part = client.uploads.parts.create(upload.id, data=data)
    try:
        done = client.uploads.complete(upload.id, part_ids=[part.id])
    except openai.BadRequestError as exc:
        pytest.skip(f"the server checks JSONL on upload completion too, so an empty batch file can't exist: {exc}")
    assert done.file is not None
    batch = client.batches.create(input_file_id=done.file.id, endpoint=CHAT, completion_window="24h")
    failed = wait_for_batch(client, batch.id)
    assert failed.status == "failed"
    assert failed.errors is not None
    assert [e.code for e in failed.errors.data] == ["empty_file"]


def test_model_with_default_upstream_is_routed(client: OpenAI) -> None:
    ids = [unique("anymodel") for _ in range(2)]
    batch = wait_for_batch(client, submit_batch(client, [chat_line(c, model="some-unknown-model") for c in ids]).id)
    assert batch.status == "completed"  # with --upstream every model is routed
    assert batch.model == "some-unknown-model"
    assert_exactly_once(client, batch, ids)


def test_first_line_model_sets_the_batch_model(client: OpenAI) -> None:
    batch = failed_batch(client, [chat_line("a", model="m-one"), chat_line("b", model=CHAT_MODEL)])
    assert errors_of(batch) == [("model_mismatch", "body.model", 2)]


def test_broken_later_line_accepted_at_upload_fails_at_validation(client: OpenAI) -> None:
    content = jsonl([ok(), "not json"])
    file_id = client.files.create(file=content, purpose="batch").id
    batch = wait_for_batch(
        client, client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id
    )
    assert batch.status == "failed"
    assert errors_of(batch) == [("invalid_json_line", None, 2)]


def test_max_validation_errors_setting(server_factory: Any) -> None:
    server = server_factory(env={"BATCHGATE_MAX_VALIDATION_ERRORS": "3"})
    client = server.client()
    lines = [ok()] + [without(chat_line(f"m{i}"), "url") for i in range(5)]
    batch = failed_batch(client, lines)
    assert errors_of(batch)[:3] == [("missing_required_parameter", "url", n) for n in (2, 3, 4)]
    assert len(batch.errors.data) == 4
    assert batch.errors.data[3].code == "too_many_errors"


def test_stream_false_is_fine(client: OpenAI) -> None:
    ids = [unique("nostream") for _ in range(2)]
    batch = wait_for_batch(client, submit_batch(client, [chat_line(c, stream=False) for c in ids]).id)
    assert batch.status == "completed", batch.errors
    assert_exactly_once(client, batch, ids)
