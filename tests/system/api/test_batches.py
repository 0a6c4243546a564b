"""Batches API parameters through the SDK: create, retrieve, cancel errors, list."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from harness import BatchgateServer
from helpers import (
    BATCH_KEYS,
    CHAT,
    assert_envelope,
    chat_line,
    raw_json,
    upload_input,
    wait_for_batch,
)
from openai import OpenAI

BATCH_ID = re.compile(r"^batch_[0-9a-zA-Z]+$")


@pytest.fixture(scope="module")
def input_file(server: BatchgateServer) -> str:
    client = server.client()
    return upload_input(client, [chat_line("p1"), chat_line("p2")])


def create(client: OpenAI, input_file: str, **kwargs: Any) -> Any:
    params: dict[str, Any] = {"input_file_id": input_file, "endpoint": CHAT, "completion_window": "24h"}
    params.update(kwargs)
    return client.batches.create(**params)


def bad_request(client: OpenAI, input_file: str, **kwargs: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as info:
        create(client, input_file, **kwargs)
    assert info.value.status_code == 400
    assert info.value.type == "invalid_request_error"
    return info.value


def test_create_returns_validating_with_every_key(server: BatchgateServer, input_file: str) -> None:
    response = raw_json(
        server.base_url,
        "POST",
        "/batches",
        {"input_file_id": input_file, "endpoint": CHAT, "completion_window": "24h"},
    )
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    batch = response.json()
    assert set(batch) >= BATCH_KEYS, BATCH_KEYS - set(batch)
    assert BATCH_ID.match(batch["id"])
    assert batch["object"] == "batch"
    assert batch["status"] == "validating"
    assert batch["endpoint"] == CHAT
    assert batch["input_file_id"] == input_file
    assert batch["completion_window"] == "24h"
    assert type(batch["created_at"]) is int
    assert batch["expires_at"] == batch["created_at"] + 86400
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    unset = ("errors", "output_file_id", "error_file_id", "in_progress_at", "finalizing_at", "completed_at")
    unset += ("failed_at", "expired_at", "cancelling_at", "cancelled_at", "metadata")
    for key in unset:
        assert batch[key] is None, key


def test_create_via_sdk_and_retrieve(client: OpenAI, input_file: str) -> None:
    batch = create(client, input_file, metadata={"project": "x", "run": "1"})
    assert batch.status == "validating"
    assert batch.metadata == {"project": "x", "run": "1"}
    assert batch._request_id
    again = client.batches.retrieve(batch.id)
    assert again.id == batch.id
    assert again.metadata == {"project": "x", "run": "1"}
    assert again.created_at == batch.created_at
    done = wait_for_batch(client, batch.id)
    assert done.status == "completed"
    assert done.metadata == {"project": "x", "run": "1"}


def test_metadata_null(client: OpenAI, input_file: str) -> None:
    batch = create(client, input_file, metadata=None)
    assert batch.metadata is None


WINDOWS = [("24h", 86400), ("1h", 3600), ("48h", 172800), ("7d", 604800), ("168h", 604800), ("2d", 172800)]


@pytest.mark.parametrize(("window", "seconds"), WINDOWS)
def test_completion_windows(client: OpenAI, input_file: str, window: str, seconds: int) -> None:
    batch = create(client, input_file, completion_window=window)
    assert batch.completion_window == window
    assert batch.expires_at == batch.created_at + seconds


@pytest.mark.parametrize("window", ["invalid", "", "0h", "8d", "169h", "24", "24m", "1.5h", "-1h", "h", " 24h"])
def test_bad_completion_window(client: OpenAI, input_file: str, window: str) -> None:
    e = bad_request(client, input_file, completion_window=window)
    assert e.param == "completion_window"
    assert e.code == "invalid_value"


@pytest.mark.parametrize(
    "endpoint",
    [
        "/v1/invalid/endpoint",
        "/v1/images/variations",
        "/v1/videos/remix",
        "/v1/chat/completions/",
        "chat/completions",
    ],
)
def test_bad_endpoint(client: OpenAI, input_file: str, endpoint: str) -> None:
    e = bad_request(client, input_file, endpoint=endpoint)
    assert e.param == "endpoint"
    assert e.code == "invalid_value"


@pytest.mark.parametrize(
    "endpoint",
    ["/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses", "/v1/moderations",
     "/v1/images/generations", "/v1/images/edits", "/v1/videos"],
)
def test_executable_endpoints_accepted(client: OpenAI, input_file: str, endpoint: str) -> None:
    assert create(client, input_file, endpoint=endpoint).endpoint == endpoint


def test_metadata_too_many_pairs(client: OpenAI, input_file: str) -> None:
    e = bad_request(client, input_file, metadata={f"k{i}": "v" for i in range(17)})
    assert e.param == "metadata"
    assert e.code == "invalid_value"


def test_metadata_limits_inclusive(client: OpenAI, input_file: str) -> None:
    metadata = {f"k{i}": "v" for i in range(15)}
    metadata["k" * 64] = "v" * 512
    assert create(client, input_file, metadata=metadata).metadata == metadata


def test_metadata_key_too_long(client: OpenAI, input_file: str) -> None:
    e = bad_request(client, input_file, metadata={"k" * 65: "v"})
    assert e.param is not None and e.param.startswith("metadata")
    assert e.code == "invalid_value"


def test_metadata_value_too_long(client: OpenAI, input_file: str) -> None:
    e = bad_request(client, input_file, metadata={"tags": "v" * 513})
    assert e.param is not None and e.param.startswith("metadata")
    assert e.code == "invalid_value"


@pytest.mark.parametrize("value", [["a", "b"], 5, None, {"x": "y"}])
def test_metadata_value_not_a_string(client: OpenAI, input_file: str, value: Any) -> None:
    e = bad_request(client, input_file, metadata={"tags": value})
    assert e.param == "metadata.tags"
    assert e.code == "invalid_type"


def test_metadata_not_an_object(client: OpenAI, input_file: str) -> None:
    e = bad_request(client, input_file, metadata=["a"])
    assert e.param == "metadata"
    assert e.code == "invalid_type"


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ({"anchor": "created_at", "seconds": 100}, "output_expires_after.seconds"),
        ({"anchor": "created_at", "seconds": 2592001}, "output_expires_after.seconds"),
        ({"anchor": "nope", "seconds": 3600}, "output_expires_after.anchor"),
    ],
)
def test_bad_output_expires_after(client: OpenAI, input_file: str, value: Any, param: str) -> None:
    e = bad_request(client, input_file, output_expires_after=value)
    assert e.param == param


@pytest.mark.parametrize("missing", ["input_file_id", "endpoint", "completion_window"])
def test_missing_parameter(server: BatchgateServer, input_file: str, missing: str) -> None:
    body = {"input_file_id": input_file, "endpoint": CHAT, "completion_window": "24h"}
    del body[missing]
    error = assert_envelope(
        raw_json(server.base_url, "POST", "/batches", body),
        400,
        code="missing_required_parameter",
        param=missing,
    )
    assert missing in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("input_file_id", 123), ("endpoint", ["x"]), ("completion_window", 24), ("metadata", "x")],
)
def test_wrong_types(server: BatchgateServer, input_file: str, field: str, value: Any) -> None:
    body: dict[str, Any] = {"input_file_id": input_file, "endpoint": CHAT, "completion_window": "24h"}
    body[field] = value
    assert_envelope(raw_json(server.base_url, "POST", "/batches", body), 400, code="invalid_type", param=field)


def test_unknown_fields_ignored(client: OpenAI, input_file: str) -> None:
    batch = create(client, input_file, extra_body={"some_future_field": True})
    assert batch.status == "validating"


def test_retrieve_unknown(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.batches.retrieve("batch_doesnotexist")
    e = info.value
    assert isinstance(e.body, dict)
    assert e.body["message"] == "No batch found with id 'batch_doesnotexist'."
    assert e.param == "id"


def test_cancel_unknown(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.batches.cancel("batch_doesnotexist")
    assert info.value.param == "id"


def test_unknown_input_file_fails_the_batch_not_the_call(client: OpenAI) -> None:
    batch = client.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    assert batch.status == "validating"
    done = wait_for_batch(client, batch.id)
    assert done.status == "failed"
    assert isinstance(done.failed_at, int)
    assert done.errors is not None and done.errors.data
    error = done.errors.data[0]
    assert (error.code, error.param, error.line) == ("invalid_request", "file_id", None)
    assert done.output_file_id is None and done.error_file_id is None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (0, 0, 0)
    assert done.in_progress_at is None


@pytest.fixture(scope="module")
def list_server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    yield module_server_factory()


def test_list_newest_first_with_exact_has_more(list_server: BatchgateServer) -> None:
    client = list_server.client()
    file_id = upload_input(client, [chat_line("l1")])
    created = []
    for _ in range(3):
        created.append(client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id)
        time.sleep(1.05)  # distinct created_at for an unambiguous order
    for _ in range(22):
        created.append(client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id)

    page = client.batches.list()
    assert len(page.data) == 20  # default limit
    assert page.has_more is True
    listed = [b.id for b in client.batches.list(limit=100).data]
    assert set(listed) == set(created)
    assert listed[-3:] == created[:3][::-1]
    stamps = [b.created_at for b in client.batches.list(limit=100).data]
    assert stamps == sorted(stamps, reverse=True)
    assert [b.id for b in page.data] == listed[:20]

    assert client.batches.list(limit=25).has_more is False
    assert client.batches.list(limit=24).has_more is True
    assert [b.id for b in client.batches.list(limit=4)] == listed  # auto-pagination over `after`
    after = client.batches.list(limit=5, after=listed[19])
    assert [b.id for b in after.data] == listed[20:]
    assert after.has_more is False
    client.close()


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_list_bad_limit(client: OpenAI, limit: int) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.batches.list(limit=limit)
    assert info.value.param == "limit"


def test_list_limit_100_ok(client: OpenAI) -> None:
    assert len(client.batches.list(limit=100).data) <= 100


def test_batch_json_types(server: BatchgateServer, client: OpenAI, input_file: str) -> None:
    batch = create(client, input_file)
    done = wait_for_batch(client, batch.id)
    response = client.batches.with_raw_response.retrieve(done.id)
    body = json.loads(response.content)
    assert set(body) >= BATCH_KEYS
    for key in ("created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at"):
        assert type(body[key]) is int, (key, body[key])
    assert body["created_at"] <= body["in_progress_at"] <= body["finalizing_at"] <= body["completed_at"]
    for key in ("failed_at", "expired_at", "cancelling_at", "cancelled_at", "errors"):
        assert body[key] is None, key
