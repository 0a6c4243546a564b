"""Bad input to every endpoint over raw HTTP: always the OpenAI envelope, a 4xx, never 422 or 500."""

from __future__ import annotations

from typing import Any

import pytest
from harness import BatchgateServer
from helpers import assert_envelope, chat_line, jsonl, multipart, raw, raw_json
from openai import OpenAI

JSON = {"Content-Type": "application/json"}


def assert_4xx_envelope(response: Any) -> dict[str, Any]:
    assert 400 <= response.status < 500 and response.status != 422, (response.status, response.body[:300])
    return assert_envelope(response, response.status)


@pytest.mark.parametrize("path", ["/batches", "/uploads", "/uploads/upload_x/complete"])
@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"a": 1', b"nul\x00l"], ids=repr)
def test_invalid_json_body(server: BatchgateServer, path: str, body: bytes) -> None:
    response = raw(server.base_url, "POST", path, body, JSON)
    if path.startswith("/uploads/upload_x") and response.status == 404:
        return  # an unknown upload may be reported before the body is read
    # An empty body may be read as {} (the SDK sends empty JSON bodies to the cancel endpoints).
    codes = {"invalid_json", "missing_required_parameter"} if body == b"" else {"invalid_json"}
    assert assert_envelope(response, 400)["code"] in codes


@pytest.mark.parametrize("path", ["/batches", "/uploads"])
@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"string"', "42", "null", "true"])
def test_json_body_not_an_object(server: BatchgateServer, path: str, body: str) -> None:
    error = assert_4xx_envelope(raw(server.base_url, "POST", path, body, JSON))
    assert error["code"] in {"invalid_json", "invalid_type"}


def test_batches_create_all_wrong(server: BatchgateServer) -> None:
    body = {"input_file_id": None, "endpoint": None, "completion_window": None}
    error = assert_envelope(raw_json(server.base_url, "POST", "/batches", body), 400)
    assert error["param"] in {"input_file_id", "endpoint", "completion_window"}


def test_batches_create_text_content_type(server: BatchgateServer) -> None:
    body = '{"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"}'
    response = raw(server.base_url, "POST", "/batches", body, {"Content-Type": "text/plain"})
    assert response.status in {200, 400}, response.body  # lenient parse or a clean 400, never a crash
    assert response.headers["content-type"].startswith("application/json")


def test_files_create_not_multipart(server: BatchgateServer) -> None:
    response = raw_json(server.base_url, "POST", "/files", {"file": "x", "purpose": "batch"})
    assert_4xx_envelope(response)


def test_files_create_broken_multipart(server: BatchgateServer) -> None:
    body = b'--nope\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--nope'  # no terminator
    response = raw(server.base_url, "POST", "/files", body, {"Content-Type": "multipart/form-data; boundary=other"})
    assert_4xx_envelope(response)


def test_files_create_multipart_without_boundary(server: BatchgateServer) -> None:
    response = raw(server.base_url, "POST", "/files", b"garbage", {"Content-Type": "multipart/form-data"})
    assert_4xx_envelope(response)


def test_files_create_truncated_multipart(server: BatchgateServer) -> None:
    body, content_type = multipart([("purpose", "batch"), ("file", ("a.jsonl", jsonl([chat_line("a")])))])
    response = raw(server.base_url, "POST", "/files", body[:-30], {"Content-Type": content_type})
    assert_4xx_envelope(response)


def test_files_create_missing_file(server: BatchgateServer) -> None:
    body, content_type = multipart([("purpose", "batch")])
    response = raw(server.base_url, "POST", "/files", body, {"Content-Type": content_type})
    assert_envelope(response, 400, code="missing_required_parameter", param="file")


def test_files_create_missing_purpose(server: BatchgateServer) -> None:
    body, content_type = multipart([("file", ("a.jsonl", jsonl([chat_line("a")])))])
    response = raw(server.base_url, "POST", "/files", body, {"Content-Type": content_type})
    assert_envelope(response, 400, code="missing_required_parameter", param="purpose")


def test_files_create_bad_purpose(server: BatchgateServer) -> None:
    body, content_type = multipart([("purpose", "nonsense"), ("file", ("a.txt", b"x"))])
    response = raw(server.base_url, "POST", "/files", body, {"Content-Type": content_type})
    assert_envelope(response, 400, code="invalid_value", param="purpose")


def test_files_create_file_as_plain_field(server: BatchgateServer) -> None:
    body, content_type = multipart([("purpose", "user_data"), ("file", "just text, no filename")])
    response = raw(server.base_url, "POST", "/files", body, {"Content-Type": content_type})
    assert response.status in {200, 400}, response.body  # lenient or a clean 400, never a crash
    if response.status == 400:
        assert_envelope(response, 400, param="file")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            [("expires_after[anchor]", "created_at"), ("expires_after[seconds]", "soon")],
            "expires_after.seconds",
        ),
        ([("expires_after[anchor]", "created_at")], "expires_after.seconds"),
        ([("expires_after[seconds]", "3600")], "expires_after.anchor"),
    ],
)
def test_files_create_bad_expires_after(server: BatchgateServer, fields: list[Any], param: str) -> None:
    body, content_type = multipart([("purpose", "user_data"), *fields, ("file", ("a.txt", b"x"))])
    response = raw(server.base_url, "POST", "/files", body, {"Content-Type": content_type})
    assert_envelope(response, 400, param=param)


@pytest.mark.parametrize("query", ["limit=abc", "limit=1.5", "order=up", "limit=-5"])
def test_files_list_bad_query(server: BatchgateServer, query: str) -> None:
    response = raw(server.base_url, "GET", f"/files?{query}")
    assert_envelope(response, 400, param=query.split("=")[0])


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=1000"])
def test_batches_list_bad_query(server: BatchgateServer, query: str) -> None:
    assert_envelope(raw(server.base_url, "GET", f"/batches?{query}"), 400, param="limit")


def test_list_unknown_after_is_not_a_crash(server: BatchgateServer) -> None:
    for path in ("/files?after=file-nope", "/batches?after=batch_nope"):
        response = raw(server.base_url, "GET", path)
        assert response.status in {200, 400, 404}, response.body
        assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/chat/completions"),
        ("GET", "/files/file-x/nope"),
        ("GET", "/batches/batch_x/nope"),
        ("GET", "/uploads/upload_x"),
        ("GET", "/files/file-x/"),  # a trailing slash is another path: 404, not a redirect
        ("GET", "/batches/"),
        ("POST", "/batches/batch_x/cancel/"),
    ],
)
def test_unknown_route_under_v1(server: BatchgateServer, method: str, path: str) -> None:
    response = raw(server.base_url, method, path, b"{}" if method == "POST" else None, JSON)
    assert_envelope(response, 404)


def test_unknown_route_outside_v1(server: BatchgateServer) -> None:
    assert_envelope(raw(server.url, "GET", "/definitely/not/here"), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/batches"), ("PUT", "/files"), ("PATCH", "/batches/batch_x"), ("GET", "/uploads")],
)
def test_wrong_method(server: BatchgateServer, method: str, path: str) -> None:
    response = raw(server.base_url, method, path, b"{}", JSON)
    assert response.status in {404, 405}, response.status
    assert_envelope(response, response.status)


@pytest.mark.parametrize(
    "path",
    [
        "/files/file-%00",
        "/files/..%2F..%2Fetc%2Fpasswd",
        "/files/" + "x" * 5000,
        "/files/file-%E2%9C%93/content",
        "/batches/batch_%27%20OR%201%3D1--",
        "/batches/%20",
    ],
)
def test_weird_ids_are_404(server: BatchgateServer, path: str) -> None:
    assert_envelope(raw(server.base_url, "GET", path), 404)


def test_uploads_parts_not_multipart(server: BatchgateServer, client: OpenAI) -> None:
    upload = client.uploads.create(filename="a.txt", purpose="user_data", bytes=3, mime_type="text/plain")
    response = raw_json(server.base_url, "POST", f"/uploads/{upload.id}/parts", {"data": "abc"})
    assert_4xx_envelope(response)
    body, content_type = multipart([("data", ("x", b"abc"))])
    response = raw(server.base_url, "POST", f"/uploads/{upload.id}/parts", body[:-20], {"Content-Type": content_type})
    assert_4xx_envelope(response)


def test_uploads_complete_wrong_types(server: BatchgateServer, client: OpenAI) -> None:
    upload = client.uploads.create(filename="a.txt", purpose="user_data", bytes=3, mime_type="text/plain")
    for body, param in (({"part_ids": [1, 2]}, "part_ids"), ({"part_ids": [], "md5": 5}, "md5")):
        assert_envelope(raw_json(server.base_url, "POST", f"/uploads/{upload.id}/complete", body), 400, param=param)


def test_uploads_create_negative_bytes(server: BatchgateServer) -> None:
    body = {"filename": "a", "purpose": "batch", "bytes": -1, "mime_type": "application/jsonl"}
    assert_envelope(raw_json(server.base_url, "POST", "/uploads", body), 400, param="bytes")


def test_uploads_create_too_big(server: BatchgateServer) -> None:
    body = {"filename": "a", "purpose": "batch", "bytes": 8 * 1024**3 + 1, "mime_type": "application/jsonl"}
    assert_envelope(raw_json(server.base_url, "POST", "/uploads", body), 400, param="bytes")


def test_cancel_with_junk_body(server: BatchgateServer) -> None:
    response = raw(server.base_url, "POST", "/batches/batch_nope/cancel", b"junk", JSON)
    assert response.status in {400, 404}
    assert_envelope(response, response.status)


def test_sdk_style_empty_cancel(server: BatchgateServer) -> None:
    response = raw(server.base_url, "POST", "/uploads/upload_nope/cancel", b"", {**JSON, "Content-Length": "0"})
    assert_envelope(response, 404, param="id")


def test_models_and_health(server: BatchgateServer, client: OpenAI) -> None:
    assert raw(server.url, "GET", "/health", api_key=None).status == 200
    models = raw(server.base_url, "GET", "/models")
    assert models.status == 200
    body = models.json()
    assert body["object"] == "list"
    for model in body["data"]:
        assert isinstance(model["id"], str) and model["object"] == "model"
    listed = client.models.list()
    assert [m.id for m in listed.data] == [m["id"] for m in body["data"]]
