"""The request values of protocol/requests.py, read from JSON bodies: the right value, or OpenAI's exact 400 (message,
type, param, code), the first fault named in the order the API has always checked them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from batchgate.domain.webhooks import EVENT_TYPES
from batchgate.errors import BatchgateError
from batchgate.protocol.requests import (
    CompleteUpload,
    CreateBatch,
    CreateFile,
    CreateKey,
    CreateUpload,
    CreateWebhook,
)

CHAT = "/v1/chat/completions"
BATCH = {"input_file_id": "file-1", "endpoint": CHAT, "completion_window": "24h"}
UPLOAD = {"filename": "a.jsonl", "purpose": "batch", "bytes": 10, "mime_type": "application/jsonl"}
ENDPOINTS = ("'/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses', '/v1/moderations', "
             "'/v1/images/generations', '/v1/images/edits', '/v1/videos'")
PURPOSES = "'assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'"
WINDOW = "Supported values are: '24h' (or any whole number of hours or days from '1h' to '7d')."


def envelope(read: Callable[[Any], object], body: Any) -> dict[str, Any]:
    with pytest.raises(BatchgateError) as e:
        read(body)
    assert e.value.status_code == 400
    return dict(e.value.envelope()["error"])


def bad(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"message": message, "type": "invalid_request_error", "param": param, "code": code}


def test_a_batch_request_keeps_every_field() -> None:
    req = CreateBatch.from_json({**BATCH, "completion_window": "2d", "metadata": {"k": "v"},
                                 "output_expires_after": {"anchor": "created_at", "seconds": "7200"}})
    assert req == CreateBatch("file-1", CHAT, "2d", {"k": "v"}, 7200)
    assert req.window_seconds == 2 * 86400


@pytest.mark.parametrize(("body", "error"), [
    ({}, bad("Missing required parameter: 'input_file_id'.", "input_file_id", "missing_required_parameter")),
    ({**BATCH, "input_file_id": 7}, bad("Invalid type for 'input_file_id': expected a string, but got an integer "
                                        "instead.", "input_file_id", "invalid_type")),
    ({**BATCH, "input_file_id": ""}, bad("Invalid value for 'input_file_id': empty string.", "input_file_id",
                                         "invalid_value")),
    # the endpoint is judged before the window is even looked for
    ({"input_file_id": "f", "endpoint": "/v1/nope"},
     bad(f"Invalid value: '/v1/nope'. Supported values are: {ENDPOINTS}.", "endpoint", "invalid_value")),
    ({**BATCH, "completion_window": "8d"}, bad(f"Invalid value: '8d'. {WINDOW}", "completion_window",
                                               "invalid_value")),
    ({**BATCH, "completion_window": None}, bad("Missing required parameter: 'completion_window'.",
                                               "completion_window", "missing_required_parameter")),
    ({**BATCH, "metadata": []}, bad("Invalid type for 'metadata': expected an object, but got an array instead.",
                                    "metadata", "invalid_type")),
    ({**BATCH, "metadata": {"k": 1}, "output_expires_after": 5},
     bad("Invalid type for 'metadata.k': expected a string, but got an integer instead.", "metadata.k",
         "invalid_type")),
    ({**BATCH, "output_expires_after": {"anchor": "now"}},
     bad("Invalid value: 'now'. Supported values are: 'created_at'.", "output_expires_after.anchor",
         "invalid_value")),
])
def test_a_bad_batch_request_gets_the_first_fault(body: dict[str, Any], error: dict[str, Any]) -> None:
    assert envelope(CreateBatch.from_json, body) == error


def test_a_batch_built_in_code_keeps_the_same_rules() -> None:
    """`batchgate run` builds its CreateBatch from its --endpoint flag, never from JSON."""
    assert envelope(lambda e: CreateBatch("file-1", e, "7d"), "/v1/nope")["param"] == "endpoint"
    assert envelope(lambda w: CreateBatch("file-1", CHAT, w), "0h")["param"] == "completion_window"


def test_an_upload_request_keeps_every_field() -> None:
    body = {**UPLOAD, "expires_after": {"anchor": "created_at", "seconds": 3600}}
    assert CreateUpload.from_json(body) == CreateUpload("a.jsonl", "batch", 10, "application/jsonl", 3600)


@pytest.mark.parametrize(("body", "error"), [
    ({**UPLOAD, "filename": None}, bad("Missing required parameter: 'filename'.", "filename",
                                       "missing_required_parameter")),
    ({**UPLOAD, "purpose": "nope", "bytes": "x"}, bad(f"Invalid value: 'nope'. Supported values are: {PURPOSES}.",
                                                      "purpose", "invalid_value")),
    ({**UPLOAD, "bytes": True}, bad("Invalid type for 'bytes': expected an integer, but got a boolean instead.",
                                    "bytes", "invalid_type")),
    # the type of mime_type comes before the range of bytes
    ({**UPLOAD, "bytes": -1, "mime_type": 3}, bad("Invalid type for 'mime_type': expected a string, but got an "
                                                  "integer instead.", "mime_type", "invalid_type")),
    ({**UPLOAD, "bytes": 8 * 1024**3 + 1, "mime_type": "image/png"},
     bad("Invalid 'bytes': must be between 0 and 8589934592, got 8589934593.", "bytes", "invalid_value")),
    ({**UPLOAD, "mime_type": "image/png"}, bad("Invalid mime type 'image/png' for purpose 'batch'. Expected "
                                               "application/jsonl.", "mime_type", "invalid_value")),
    ({**UPLOAD, "expires_after": {"anchor": "created_at"}},
     bad("Missing required parameter: 'expires_after.seconds'.", "expires_after.seconds",
         "missing_required_parameter")),
])
def test_a_bad_upload_request_gets_the_first_fault(body: dict[str, Any], error: dict[str, Any]) -> None:
    assert envelope(CreateUpload.from_json, body) == error


def test_completing_an_upload() -> None:
    assert CompleteUpload.from_json({"part_ids": ["p1", "p2"], "md5": "ab"}) == CompleteUpload(("p1", "p2"), "ab")
    assert CompleteUpload.from_json({"part_ids": []}) == CompleteUpload(())
    # repeats are the service's to refuse: an unknown or finished upload answers first
    assert CompleteUpload.from_json({"part_ids": ["p", "p"]}).part_ids == ("p", "p")
    assert envelope(CompleteUpload.from_json, {}) == bad("Missing required parameter: 'part_ids'.", "part_ids",
                                                         "missing_required_parameter")
    assert envelope(CompleteUpload.from_json, {"part_ids": ["a", 1]}) == bad(
        "Invalid type for 'part_ids': expected an array of strings, but got an array instead.", "part_ids",
        "invalid_type")
    assert envelope(CompleteUpload.from_json, {"part_ids": [], "md5": 5}) == bad(
        "Invalid type for 'md5': expected a string, but got an integer instead.", "md5", "invalid_type")


def test_a_file_form() -> None:
    fields = {"purpose": "user_data", "expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}
    assert CreateFile.from_form(fields, "notes.txt") == CreateFile("notes.txt", "user_data", 3600)
    assert CreateFile.from_form({"purpose": "batch"}, None) == CreateFile("upload", "batch")
    assert envelope(lambda f: CreateFile.from_form(f, "x"), {}) == bad(
        "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter")
    assert envelope(lambda f: CreateFile.from_form(f, "x"), {"purpose": "nope"}) == bad(
        f"Invalid value: 'nope'. Supported values are: {PURPOSES}.", "purpose", "invalid_value")
    assert envelope(lambda p: CreateFile("x", p), "nope")["param"] == "purpose"


def test_a_webhook_request() -> None:
    def read(body: dict[str, Any]) -> CreateWebhook:
        return CreateWebhook.from_json(body, allow_private=False)

    assert read({"url": "https://x.example/h"}) == CreateWebhook("https://x.example/h", EVENT_TYPES)
    assert read({"url": "https://x.example/h", "events": ["batch.failed", "batch.completed"]}).events == (
        "batch.completed", "batch.failed")  # in the canonical order
    assert envelope(read, {"url": "ftp://x/", "events": 3}) == bad(
        "The webhook URL must start with http:// or https://.", "url", "invalid_value")
    # a private address, where this server refuses them, is named before bad events
    assert envelope(read, {"url": "http://127.0.0.1/h", "events": 3}) == bad(
        "The webhook URL points at a private or loopback address, which this server does not allow.", "url",
        "invalid_value")
    assert CreateWebhook.from_json({"url": "http://127.0.0.1/h"}, allow_private=True).url == "http://127.0.0.1/h"
    assert envelope(read, {"url": "http://x/", "events": []}) == bad(
        "'events' must name at least one event.", "events", "invalid_value")
    assert envelope(read, {"url": "http://x/", "events": {}}) == bad(
        "Invalid type for 'events': expected an array, but got an object instead.", "events", "invalid_type")


def test_a_key_request() -> None:
    assert CreateKey.from_json({"project": "team-a"}) == CreateKey("team-a", False)
    assert CreateKey.from_json({"project": "ops", "admin": True}) == CreateKey("ops", True)
    # the type of `admin` comes before the rule on project names
    assert envelope(CreateKey.from_json, {"project": "bad name!", "admin": "yes"}) == bad(
        "Invalid type for 'admin': expected a boolean, but got a string instead.", "admin", "invalid_type")
    rule = bad("A project name is 1-128 letters, digits, '-' or '_'.", "project", "invalid_value")
    assert envelope(CreateKey.from_json, {"project": "bad name!"}) == rule
    assert envelope(lambda p: CreateKey(p), "x" * 129) == rule  # `batchgate keys create --project ...`


@pytest.mark.parametrize("read", [CreateBatch.from_json, CreateUpload.from_json, CompleteUpload.from_json,
                                  lambda b: CreateWebhook.from_json(b, True), CreateKey.from_json])
def test_values_are_frozen(read: Callable[[Mapping[str, Any]], object]) -> None:
    good = {**BATCH, **UPLOAD, "part_ids": [], "url": "http://x/", "project": "p"}
    assert type(read(good)).__dataclass_params__.frozen  # type: ignore[attr-defined]
