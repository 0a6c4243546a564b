"""Hostile input, each case named with its expected outcome, through a real server (raw HTTP and the SDK).

Whatever arrives, the server answers within the client's timeout with the OpenAI envelope (400 for bad
parameters, never 422; 404 for unknown ids and routes; 413 for oversized payloads), or accepts the input and
reports bad lines in the batch's `errors`; never a 500 and never a stack trace. At the end of the module the
server's own log must hold no traceback either.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from harness import BatchgateServer
from helpers import (
    CHAT,
    EMBEDDINGS,
    assert_envelope,
    chat_line,
    embedding_line,
    file_lines,
    jsonl,
    multipart,
    raw,
    raw_json,
    wait_for_batch,
)
from openai import OpenAI

JSON = {"Content-Type": "application/json"}
TIMEOUT = 60.0  # every raw request and SDK call has a client timeout: a hang fails the test
MB = 1024 * 1024


@pytest.fixture(scope="module")
def hostile(module_server_factory: Any) -> Iterator[BatchgateServer]:
    server: BatchgateServer = module_server_factory(
        env={"BATCHGATE_MAX_ATTEMPTS": "3", "BATCHGATE_REQUEST_TIMEOUT": "20"}
    )
    yield server
    log = server.log_tail(10_000_000)
    assert "Traceback" not in log, log[-4000:]
    assert "unhandled error" not in log, log[-4000:]


@pytest.fixture
def sdk(hostile: BatchgateServer) -> Iterator[OpenAI]:
    client = OpenAI(base_url=hostile.base_url, api_key="test", max_retries=0, timeout=TIMEOUT)
    yield client
    client.close()


def no_trace(response: Any) -> Any:
    assert response.status < 500, (response.status, response.body[:500])
    assert b"Traceback" not in response.body and b'File "' not in response.body, response.body[:500]
    return response


def call(server: BatchgateServer, method: str, path: str, body: bytes | str | None = None,
         headers: dict[str, str] | None = None) -> Any:
    return no_trace(raw(server.base_url, method, path, body, headers, timeout=TIMEOUT))


def upload_raw(server: BatchgateServer, content: bytes, filename: str = "input.jsonl", purpose: str = "batch") -> Any:
    body, ctype = multipart([("purpose", purpose), ("file", (filename, content))])
    return call(server, "POST", "/files", body, {"Content-Type": ctype})


def batch_of(server: BatchgateServer, sdk: OpenAI, content: bytes, endpoint: str = CHAT) -> Any:
    """Upload `content` (must pass the upload check), create a batch, wait for a terminal status."""
    response = upload_raw(server, content)
    assert response.status == 200, response.body[:500]
    batch = sdk.batches.create(input_file_id=response.json()["id"], endpoint=endpoint,  # type: ignore[arg-type]
                               completion_window="24h")
    return wait_for_batch(sdk, batch.id, timeout=120)


GOOD = json.dumps(chat_line("good-1")).encode()


def good(cid: str) -> bytes:
    return json.dumps(chat_line(cid)).encode()


def line(**fields: Any) -> bytes:
    base: dict[str, Any] = {"custom_id": "bad", "method": "POST", "url": CHAT,
                            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}}
    for k, v in fields.items():
        if k.startswith("body_"):
            key = k[5:]
            if v is _DROP:
                base["body"].pop(key, None)
            else:
                base["body"][key] = v
        elif v is _DROP:
            base.pop(k)
        else:
            base[k] = v
    return json.dumps(base).encode()


_DROP: Any = object()

# ---------------------------------------------------------------------------------------------------------
# Batch input files whose line 2 is broken: the batch fails validation with one error naming line 2.
# (name, line-2 bytes, expected code, expected param)
BAD_LINES = [
    ("not_json", b"this is not json", "invalid_json_line", None),
    ("truncated_json", b'{"custom_id": "x", "method": "POST"', "invalid_json_line", None),
    ("non_utf8_bytes", b'{"custom_id": "\xff\xfe", "method": "POST"}', "invalid_json_line", None),
    ("non_utf8_in_message_content", line().replace(b'"x"', b'"\xff\xfe"'), "invalid_json_line", None),
    ("utf8_encoded_surrogate", line().replace(b'"x"', b'"\xed\xa0\x80"'), "invalid_json_line", None),
    ("number_overflows_double", line(body_temperature=0).replace(b": 0", b": 1e999999"), "invalid_json_line",
     None),
    ("nul_bytes", b"\x00\x00\x00", "invalid_json_line", None),
    ("deeply_nested_100k", b"[" * 100_000, "invalid_json_line", None),
    ("deeply_nested_object", b'{"a":' * 50_000, "invalid_json_line", None),
    ("json_array_line", b"[1, 2, 3]", "invalid_json_line", None),
    ("json_string_line", b'"just a string"', "invalid_json_line", None),
    ("json_null_line", b"null", "invalid_json_line", None),
    ("custom_id_int", line(custom_id=7), "invalid_type", "custom_id"),
    ("custom_id_object", line(custom_id={"a": 1}), "invalid_type", "custom_id"),
    ("custom_id_null", line(custom_id=None), "missing_required_parameter", "custom_id"),
    ("custom_id_missing", line(custom_id=_DROP), "missing_required_parameter", "custom_id"),
    ("custom_id_empty", line(custom_id=""), "invalid_value", "custom_id"),
    ("custom_id_513_chars", line(custom_id="x" * 513), "invalid_value", "custom_id"),
    ("method_int", line(method=1), "invalid_type", "method"),
    ("method_get", line(method="GET"), "invalid_value", "method"),
    ("method_missing", line(method=_DROP), "missing_required_parameter", "method"),
    ("url_list", line(url=["/v1/chat/completions"]), "invalid_type", "url"),
    ("url_other_endpoint", line(url=EMBEDDINGS), "invalid_url", "url"),
    ("url_absolute_elsewhere", line(url="http://169.254.169.254/v1/chat/completions"), "invalid_url", "url"),
    ("url_traversal", line(url="/v1/chat/completions/../../admin"), "invalid_url", "url"),
    ("body_string", line(body="{}"), "invalid_type", "body"),
    ("body_list", line(body=[]), "invalid_type", "body"),
    ("body_missing", line(body=_DROP), "missing_required_parameter", "body"),
    ("model_int", line(body_model=4), "invalid_type", "body.model"),
    ("model_list", line(body_model=["gpt-4o-mini"]), "invalid_type", "body.model"),
    ("model_missing", line(body_model=_DROP), "invalid_request", "body.model"),
    ("model_empty", line(body_model=""), "invalid_request", "body.model"),
    ("messages_string", line(body_messages="hi"), "invalid_request", "body.messages"),
    ("messages_empty", line(body_messages=[]), "invalid_request", "body.messages"),
    ("messages_missing", line(body_messages=_DROP), "invalid_request", "body.messages"),
    ("stream_true", line(body_stream=True), "streaming_unsupported", "body.stream"),
    ("mixed_models", line(body_model="gpt-4o"), "model_mismatch", "body.model"),
    ("duplicate_custom_id", line(custom_id="good-1"), "duplicate_custom_id", "custom_id"),
]


@pytest.mark.parametrize(("case", "bad", "code", "param"), BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_bad_line_fails_validation(
    hostile: BatchgateServer, sdk: OpenAI, case: str, bad: bytes, code: str, param: str | None
) -> None:
    batch = batch_of(hostile, sdk, GOOD + b"\n" + bad + b"\n" + good("good-3") + b"\n")
    assert batch.status == "failed", (case, batch)
    assert batch.errors is not None and batch.errors.data
    errors = [(e.code, e.param, e.line) for e in batch.errors.data]
    assert errors == [(code, param, 2)], (case, errors)


# ---------------------------------------------------------------------------------------------------------
# Files that are accepted: the quirks OpenAI tolerates.


def test_utf8_bom_first_line_is_stripped(hostile: BatchgateServer, sdk: OpenAI) -> None:
    batch = batch_of(hostile, sdk, b"\xef\xbb\xbf" + jsonl([chat_line("a"), chat_line("b")]))
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.completed == 2


def test_crlf_line_endings_are_accepted(hostile: BatchgateServer, sdk: OpenAI) -> None:
    content = b"\r\n".join(json.dumps(chat_line(c)).encode() for c in ("a", "b", "c")) + b"\r\n"
    batch = batch_of(hostile, sdk, content)
    assert batch.status == "completed", batch
    outputs = {o["custom_id"] for o in file_lines(sdk, batch.output_file_id)}
    assert outputs == {"a", "b", "c"}


def test_blank_lines_are_skipped(hostile: BatchgateServer, sdk: OpenAI) -> None:
    content = b"\n" + good("a") + b"\n\n   \n\t\n" + good("b") + b"\n\n\n"
    batch = batch_of(hostile, sdk, content)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.total == 2


def test_no_trailing_newline_is_accepted(hostile: BatchgateServer, sdk: OpenAI) -> None:
    batch = batch_of(hostile, sdk, good("a") + b"\n" + good("b"))
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.total == 2


def test_ten_mb_single_valid_line_runs(hostile: BatchgateServer, sdk: OpenAI) -> None:
    content = json.dumps(chat_line("big", "y " * (5 * MB))).encode() + b"\n"
    assert len(content) > 10 * MB
    batch = batch_of(hostile, sdk, content)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.completed == 1


def test_ten_mb_single_garbage_line_fails_validation(hostile: BatchgateServer, sdk: OpenAI) -> None:
    # A first line longer than the 1 MiB head passes the upload check; the validator judges it.
    batch = batch_of(hostile, sdk, b"{" + b"x" * (10 * MB) + b"\n")
    assert batch.status == "failed"
    assert batch.errors is not None
    assert [(e.code, e.line) for e in batch.errors.data] == [("invalid_json_line", 1)]


def test_50001_lines_is_too_many(hostile: BatchgateServer, sdk: OpenAI) -> None:
    one = json.dumps(chat_line("X")).encode()
    content = b"".join(one.replace(b'"X"', f'"r{i}"'.encode(), 1) + b"\n" for i in range(50_001))
    batch = batch_of(hostile, sdk, content)
    assert batch.status == "failed"
    assert batch.errors is not None
    assert [e.code for e in batch.errors.data] == ["too_many_tasks"]


def test_many_bad_lines_are_capped_with_a_summary(hostile: BatchgateServer, sdk: OpenAI) -> None:
    content = GOOD + b"\n" + b"nope\n" * 250
    batch = batch_of(hostile, sdk, content)
    assert batch.status == "failed"
    assert batch.errors is not None
    data = batch.errors.data
    assert len(data) == 101
    assert [e.line for e in data[:100]] == list(range(2, 102))
    assert data[-1].code == "too_many_errors" and "150" in (data[-1].message or "")


def test_embeddings_line_without_input(hostile: BatchgateServer, sdk: OpenAI) -> None:
    bad = {"custom_id": "e2", "method": "POST", "url": EMBEDDINGS, "body": {"model": "text-embedding-3-small"}}
    batch = batch_of(hostile, sdk, jsonl([embedding_line("e1"), bad]), endpoint=EMBEDDINGS)
    assert batch.status == "failed"
    assert batch.errors is not None
    assert [(e.code, e.param, e.line) for e in batch.errors.data] == [("invalid_request", "body.input", 2)]


def test_upstream_unparseable_request_lands_in_error_file(hostile: BatchgateServer, sdk: OpenAI) -> None:
    # Valid for batchgate, refused by the upstream with a 400: an error line with the upstream's status.
    bad = chat_line("x", x_fake={"status": 400, "body": {"error": {"message": "nope", "type": "invalid_request_error",
                                                                     "param": None, "code": None}}})
    batch = batch_of(hostile, sdk, jsonl([chat_line("ok"), bad]))
    assert batch.status == "completed"
    errors = {e["custom_id"]: e for e in file_lines(sdk, batch.error_file_id)}
    assert errors["x"]["response"]["status_code"] == 400
    assert errors["x"]["response"]["body"]["error"]["message"] == "nope"


# ---------------------------------------------------------------------------------------------------------
# Upload-time checks on POST /v1/files (purpose=batch looks at the first line only).

REJECTED_UPLOADS = [
    ("empty_file", b""),
    ("only_blank_lines", b"\n\n   \r\n\n"),
    ("not_json", b"hello, world\n"),
    ("non_utf8_first_line", b"\xff\xfe\xfd\n"),
    ("array_first_line", b"[1, 2, 3]\n"),
    ("deeply_nested_first_line", b"[" * 100_000 + b"\n"),
    ("csv", b"custom_id,method,url\na,POST,/v1/chat/completions\n"),
]


@pytest.mark.parametrize(("case", "content"), REJECTED_UPLOADS, ids=[c[0] for c in REJECTED_UPLOADS])
def test_batch_upload_rejected(hostile: BatchgateServer, case: str, content: bytes) -> None:
    assert_envelope(upload_raw(hostile, content), 400, code="invalid_file_format", param="file")


def test_empty_file_via_sdk(sdk: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        sdk.files.create(file=("empty.jsonl", b""), purpose="batch")
    assert e.value.code == "invalid_file_format"


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\config", "config"),
        ("/absolute/path/input.jsonl", "input.jsonl"),
        ("a/b/../../../../../tmp/x.jsonl", "x.jsonl"),
        ("..", ".."),
        ("../", "upload"),
    ],
)
def test_path_traversal_filename(hostile: BatchgateServer, sdk: OpenAI, filename: str, stored: str) -> None:
    before = sorted(p.name for p in hostile.data_dir.parent.iterdir())
    f = sdk.files.create(file=(filename, GOOD + b"\n"), purpose="batch")
    assert f.filename == stored
    assert sorted(p.name for p in hostile.data_dir.parent.iterdir()) == before  # nothing written beside it
    blob_dir = hostile.data_dir / "files"
    assert (blob_dir / f.id).is_file()
    assert all(p.name.startswith(("file-", "part_", ".tmp")) for p in blob_dir.iterdir())  # bytes live under ids
    assert sdk.files.content(f.id).content == GOOD + b"\n"


def test_nul_byte_in_filename_is_dropped(hostile: BatchgateServer) -> None:
    response = upload_raw(hostile, GOOD + b"\n", filename="nul\x00byte.jsonl")
    assert response.status == 200, response.body
    assert response.json()["filename"] == "nulbyte.jsonl"


def test_long_filename_is_truncated(sdk: OpenAI) -> None:
    f = sdk.files.create(file=("a" * 1000 + ".jsonl", GOOD + b"\n"), purpose="batch")
    assert len(f.filename) == 255


def test_huge_filename_header_is_400(hostile: BatchgateServer) -> None:
    response = upload_raw(hostile, GOOD + b"\n", filename="a" * 20_000)
    assert_envelope(response, 400, code="invalid_multipart")


# ---------------------------------------------------------------------------------------------------------
# Multipart trouble.


def test_oversized_form_field_is_413(hostile: BatchgateServer) -> None:
    body, ctype = multipart([("purpose", "b" * (100 * 1024)), ("file", ("a.jsonl", GOOD + b"\n"))])
    assert_envelope(call(hostile, "POST", "/files", body, {"Content-Type": ctype}), 413)


def test_oversized_unknown_form_field_is_413(hostile: BatchgateServer) -> None:
    body, ctype = multipart([("purpose", "batch"), ("junk", "j" * (MB)), ("file", ("a.jsonl", GOOD + b"\n"))])
    assert_envelope(call(hostile, "POST", "/files", body, {"Content-Type": ctype}), 413)


@pytest.mark.parametrize("cut", [3, 10, 40, 200])
def test_truncated_multipart_body(hostile: BatchgateServer, cut: int) -> None:
    body, ctype = multipart([("purpose", "batch"), ("file", ("a.jsonl", jsonl([chat_line("a")] * 3)))])
    response = call(hostile, "POST", "/files", body[:-cut], {"Content-Type": ctype})
    assert_envelope(response, 400)


def test_multipart_too_many_parts(hostile: BatchgateServer) -> None:
    body, ctype = multipart([("purpose", "batch")] + [(f"f{i}", "x") for i in range(40)]
                            + [("file", ("a.jsonl", GOOD + b"\n"))])
    assert_envelope(call(hostile, "POST", "/files", body, {"Content-Type": ctype}), 400, code="invalid_multipart")


def test_multipart_two_files(hostile: BatchgateServer) -> None:
    body, ctype = multipart([("purpose", "batch"), ("file", ("a.jsonl", GOOD + b"\n")),
                             ("file", ("b.jsonl", GOOD + b"\n"))])
    assert_envelope(call(hostile, "POST", "/files", body, {"Content-Type": ctype}), 400, code="invalid_multipart")


def test_multipart_garbage_headers(hostile: BatchgateServer) -> None:
    body = b"--xx\r\nthis is not a header line\r\n\r\nvalue\r\n--xx--\r\n"
    response = call(hostile, "POST", "/files", body, {"Content-Type": "multipart/form-data; boundary=xx"})
    assert_envelope(response, 400)


def test_multipart_non_utf8_field(hostile: BatchgateServer) -> None:
    body, ctype = multipart([("purpose", "batch"), ("file", ("a.jsonl", GOOD + b"\n"))])
    body = body.replace(b"\r\n\r\nbatch", b"\r\n\r\n\xff\xfe", 1)
    assert_envelope(call(hostile, "POST", "/files", body, {"Content-Type": ctype}), 400)


@pytest.mark.parametrize("ctype", ["application/json", "text/plain", "application/x-www-form-urlencoded", ""])
def test_files_create_wrong_content_type(hostile: BatchgateServer, ctype: str) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    response = call(hostile, "POST", "/files", b"purpose=batch&file=x", headers)
    assert_envelope(response, 400)


def test_declared_content_length_over_limit_is_413(hostile: BatchgateServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", hostile.port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", "/v1/files")
        conn.putheader("Authorization", "Bearer test")
        conn.putheader("Content-Type", "multipart/form-data; boundary=xx")
        conn.putheader("Content-Length", str(600 * MB))
        conn.endheaders()
        conn.send(b"--xx\r\n")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 413, body
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_200_mb_plus_one_byte(hostile: BatchgateServer, sdk: OpenAI) -> None:
    """Streamed from a generator (never built in memory): accepted as a file, refused as a batch input."""
    size = 209_715_200 + 1
    boundary = "hostileboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def content() -> Iterator[bytes]:
        first = GOOD + b"\n"
        yield head
        yield first
        filler = (b"x" * 1023 + b"\n") * 1024  # 1 MiB of lines
        left = size - len(first)
        while left > 0:
            block = filler[:left]
            left -= len(block)
            yield block
        yield tail

    conn = http.client.HTTPConnection("127.0.0.1", hostile.port, timeout=TIMEOUT * 3)
    try:
        conn.request("POST", "/v1/files", body=content(), headers={
            "Authorization": "Bearer test", "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        })
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200, body[:500]
    f = json.loads(body)
    assert f["bytes"] == size
    try:
        batch = sdk.batches.create(input_file_id=f["id"], endpoint=CHAT, completion_window="24h")
        batch = wait_for_batch(sdk, batch.id, timeout=60)
        assert batch.status == "failed"
        assert batch.errors is not None
        assert [e.code for e in batch.errors.data] == ["file_too_large"]
    finally:
        sdk.files.delete(f["id"])


# ---------------------------------------------------------------------------------------------------------
# JSON endpoints: non-JSON bodies, wrong types in every field, huge values.

CREATE_OK = {"input_file_id": "file-abc", "endpoint": CHAT, "completion_window": "24h"}
BATCH_CREATE_CASES = [
    ("input_file_id_int", {"input_file_id": 5}, "input_file_id", "invalid_type"),
    ("input_file_id_list", {"input_file_id": ["file-a"]}, "input_file_id", "invalid_type"),
    ("input_file_id_empty", {"input_file_id": ""}, "input_file_id", "invalid_value"),
    ("endpoint_unknown", {"endpoint": "/v1/images/variations"}, "endpoint", "invalid_value"),
    ("endpoint_traversal", {"endpoint": "/v1/chat/completions/../../x"}, "endpoint", "invalid_value"),
    ("endpoint_absolute_url", {"endpoint": "http://evil/v1/chat/completions"}, "endpoint", "invalid_value"),
    ("endpoint_object", {"endpoint": {"a": 1}}, "endpoint", "invalid_type"),
    ("window_48", {"completion_window": "48"}, "completion_window", "invalid_value"),
    ("window_8d", {"completion_window": "8d"}, "completion_window", "invalid_value"),
    ("window_0h", {"completion_window": "0h"}, "completion_window", "invalid_value"),
    ("window_int", {"completion_window": 24}, "completion_window", "invalid_type"),
    ("metadata_list", {"metadata": ["a"]}, "metadata", "invalid_type"),
    ("metadata_value_list", {"metadata": {"tags": ["a"]}}, "metadata.tags", "invalid_type"),
    ("metadata_value_int", {"metadata": {"n": 1}}, "metadata.n", "invalid_type"),
    ("metadata_value_null", {"metadata": {"n": None}}, "metadata.n", "invalid_type"),
    ("metadata_17_pairs", {"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "invalid_value"),
    ("metadata_long_key", {"metadata": {"k" * 65: "v"}}, "metadata", "invalid_value"),
    ("metadata_long_value", {"metadata": {"k": "v" * 513}}, "metadata.k", "invalid_value"),
    ("output_expires_after_string", {"output_expires_after": "3600"}, "output_expires_after", "invalid_type"),
    ("output_expires_after_short", {"output_expires_after": {"anchor": "created_at", "seconds": 5}},
     "output_expires_after.seconds", "invalid_value"),
    ("output_expires_after_anchor", {"output_expires_after": {"anchor": "now", "seconds": 3600}},
     "output_expires_after.anchor", "invalid_value"),
]


@pytest.mark.parametrize(("case", "change", "param", "code"), BATCH_CREATE_CASES,
                         ids=[c[0] for c in BATCH_CREATE_CASES])
def test_batch_create_bad_field(
    hostile: BatchgateServer, case: str, change: dict[str, Any], param: str, code: str
) -> None:
    response = no_trace(raw_json(hostile.base_url, "POST", "/batches", {**CREATE_OK, **change}, timeout=TIMEOUT))
    assert_envelope(response, 400, param=param, code=code)


def test_huge_json_body_is_413(hostile: BatchgateServer) -> None:
    body = {**CREATE_OK, "metadata": {"k": "v" * (2 * MB)}}
    response = no_trace(raw_json(hostile.base_url, "POST", "/batches", body, timeout=TIMEOUT))
    assert_envelope(response, 413, code="payload_too_large")


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("not_json", b"input_file_id=file-x"),
        ("deeply_nested", b"[" * 100_000),
        ("deeply_nested_object", b'{"a":' * 100_000),
        ("json_array", b"[]"),
        ("json_number", b"1e999999"),
        ("invalid_utf8", b'{"input_file_id": "\xff"}'),
        ("nul_bytes", b"\x00" * 1000),
    ],
)
def test_batch_create_non_json_body(hostile: BatchgateServer, case: str, body: bytes) -> None:
    error = assert_envelope(call(hostile, "POST", "/batches", body, JSON), 400)
    assert error["code"] in {"invalid_json", "invalid_type"}, (case, error)


@pytest.mark.parametrize(
    ("case", "body", "param"),
    [
        ("bytes_string", {"bytes": "10"}, "bytes"),
        ("bytes_bool", {"bytes": True}, "bytes"),
        ("bytes_float", {"bytes": 1.5}, "bytes"),
        ("filename_int", {"filename": 3}, "filename"),
        ("purpose_unknown", {"purpose": "world-domination"}, "purpose"),
        ("mime_type_bad_for_batch", {"mime_type": "image/png"}, "mime_type"),
        ("mime_type_missing", {"mime_type": None}, "mime_type"),
    ],
)
def test_upload_create_bad_field(hostile: BatchgateServer, case: str, body: dict[str, Any], param: str) -> None:
    full = {"filename": "a.jsonl", "purpose": "batch", "bytes": 10, "mime_type": "application/jsonl", **body}
    response = no_trace(raw_json(hostile.base_url, "POST", "/uploads", full, timeout=TIMEOUT))
    assert_envelope(response, 400, param=param)


def test_upload_complete_part_of_another_upload(hostile: BatchgateServer, sdk: OpenAI) -> None:
    a = sdk.uploads.create(filename="a.txt", purpose="user_data", bytes=3, mime_type="text/plain")
    b = sdk.uploads.create(filename="b.txt", purpose="user_data", bytes=3, mime_type="text/plain")
    part = sdk.uploads.parts.create(upload_id=b.id, data=b"abc")
    body = {"part_ids": [part.id]}
    response = no_trace(raw_json(hostile.base_url, "POST", f"/uploads/{a.id}/complete", body, timeout=TIMEOUT))
    assert_envelope(response, 400, param="part_ids")
    body = {"part_ids": ["part_nope"]}
    response = no_trace(raw_json(hostile.base_url, "POST", f"/uploads/{a.id}/complete", body, timeout=TIMEOUT))
    assert_envelope(response, 400, param="part_ids")


def test_upload_part_after_cancel(hostile: BatchgateServer, sdk: OpenAI) -> None:
    u = sdk.uploads.create(filename="a.txt", purpose="user_data", bytes=3, mime_type="text/plain")
    sdk.uploads.cancel(u.id)
    body, ctype = multipart([("data", ("blob", b"abc"))])
    assert_envelope(call(hostile, "POST", f"/uploads/{u.id}/parts", body, {"Content-Type": ctype}), 400,
                    code="invalid_state")


def test_upload_part_without_data(hostile: BatchgateServer, sdk: OpenAI) -> None:
    u = sdk.uploads.create(filename="a.txt", purpose="user_data", bytes=3, mime_type="text/plain")
    body, ctype = multipart([("other", "x")])
    assert_envelope(call(hostile, "POST", f"/uploads/{u.id}/parts", body, {"Content-Type": ctype}), 400,
                    param="data")


# ---------------------------------------------------------------------------------------------------------
# Unknown ids of every kind, unknown routes, list parameters.

UNKNOWN_IDS = [
    ("GET", "/files/file-doesnotexist"),
    ("DELETE", "/files/file-doesnotexist"),
    ("GET", "/files/file-doesnotexist/content"),
    ("GET", "/batches/batch_doesnotexist"),
    ("POST", "/batches/batch_doesnotexist/cancel"),
    ("POST", "/uploads/upload_doesnotexist/parts"),
    ("POST", "/uploads/upload_doesnotexist/complete"),
    ("POST", "/uploads/upload_doesnotexist/cancel"),
    ("GET", "/files/part_doesnotexist"),  # a part id is not a file id
    ("GET", "/files/upload_doesnotexist"),
    ("GET", "/batches/file-doesnotexist"),
]


@pytest.mark.parametrize(("method", "path"), UNKNOWN_IDS, ids=[f"{m} {p}" for m, p in UNKNOWN_IDS])
def test_unknown_id_is_404(hostile: BatchgateServer, method: str, path: str) -> None:
    body, ctype = (multipart([("data", ("x", b"abc"))]) if path.endswith("/parts")
                   else (b'{"part_ids": []}', "application/json"))
    response = call(hostile, method, path, body if method == "POST" else None,
                    {"Content-Type": ctype} if method == "POST" else None)
    assert_envelope(response, 404, param="id")


def test_unknown_ids_via_sdk(sdk: OpenAI) -> None:
    for fn in (lambda: sdk.files.retrieve("file-nope"), lambda: sdk.files.content("file-nope"),
               lambda: sdk.files.delete("file-nope"), lambda: sdk.batches.retrieve("batch_nope"),
               lambda: sdk.batches.cancel("batch_nope"), lambda: sdk.uploads.cancel("upload_nope"),
               lambda: sdk.uploads.complete("upload_nope", part_ids=[]),
               lambda: sdk.uploads.parts.create(upload_id="upload_nope", data=b"x")):
        with pytest.raises(openai.NotFoundError):
            fn()


def test_batch_on_unknown_file_fails(sdk: OpenAI) -> None:
    batch = sdk.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    batch = wait_for_batch(sdk, batch.id)
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data[0].param == "file_id"


def test_batch_on_non_batch_purpose_file_fails(sdk: OpenAI) -> None:
    f = sdk.files.create(file=("a.jsonl", GOOD + b"\n"), purpose="user_data")
    batch = wait_for_batch(sdk, sdk.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h").id)
    assert batch.status == "failed"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/files", 404),
        ("GET", "/v1/engines", 404),
        ("POST", "/v1/fine_tuning/jobs", 404),
        ("GET", "/v1/files/file-x/content/more", 404),
        ("PUT", "/v1/batches", 405),
        ("DELETE", "/v1/uploads/upload_x/parts", 405),
    ],
)
def test_unknown_route_or_method(hostile: BatchgateServer, method: str, path: str, status: int) -> None:
    response = no_trace(raw(hostile.url, method, path, b"{}", JSON, timeout=TIMEOUT))
    assert_envelope(response, status)


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/files?limit=0", "limit"),
        ("/files?limit=10001", "limit"),
        ("/files?limit=1e3", "limit"),
        ("/files?limit=%00", "limit"),
        ("/files?limit=99999999999999999999999999", "limit"),
        ("/files?order=ASC", "order"),
        ("/files?order=random", "order"),
        ("/batches?limit=101", "limit"),
        ("/batches?limit=-1", "limit"),
        ("/batches?limit=ten", "limit"),
    ],
)
def test_list_bad_params(hostile: BatchgateServer, path: str, param: str) -> None:
    assert_envelope(call(hostile, "GET", path), 400, param=param)


@pytest.mark.parametrize(
    "path",
    ["/files?after=file-nope", "/files?after=" + "x" * 10_000, "/batches?after=batch_nope",
     "/batches?after=%27%3B%20DROP%20TABLE%20batches%3B--", "/files?purpose=%00", "/files?purpose=" + "p" * 5000],
)
def test_list_odd_cursors_and_filters(hostile: BatchgateServer, path: str) -> None:
    response = call(hostile, "GET", path)
    assert response.status in {200, 400}, response.body[:300]
    if response.status == 200:
        assert response.json()["object"] == "list"
    else:
        assert_envelope(response, 400)


def test_server_still_serves_after_all_that(hostile: BatchgateServer, sdk: OpenAI) -> None:
    batch = batch_of(hostile, sdk, jsonl([chat_line("after-1"), chat_line("after-2")]))
    assert batch.status == "completed"
    assert call(hostile, "GET", "/models").status == 200
    assert raw(hostile.url, "GET", "/health", timeout=TIMEOUT).status == 200
