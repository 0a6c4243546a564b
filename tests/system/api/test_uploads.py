"""Uploads API through the official SDK: create, parts, complete, cancel, and the chunked helper."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import BatchgateServer
from helpers import assert_envelope, chat_line, jsonl, multipart, raw, raw_json
from openai import OpenAI

CONTENT = jsonl([chat_line(f"u{i}") for i in range(5)])


def create(client: OpenAI, size: int, **kwargs: Any) -> Any:
    params = {"filename": "in.jsonl", "purpose": "batch", "mime_type": "application/jsonl", "bytes": size}
    params.update(kwargs)
    return client.uploads.create(**params)


def create_plain(client: OpenAI, size: int) -> Any:
    """An upload whose content is not checked as JSONL."""
    return create(client, size, purpose="user_data", mime_type="text/plain")


def add_parts(client: OpenAI, upload_id: str, chunks: list[bytes]) -> list[str]:
    return [client.uploads.parts.create(upload_id, data=chunk).id for chunk in chunks]


def test_create_pending(client: OpenAI) -> None:
    upload = create(client, len(CONTENT))
    assert upload.id.startswith("upload_")
    assert upload.object == "upload"
    assert upload.status == "pending"
    assert upload.bytes == len(CONTENT)
    assert upload.filename == "in.jsonl"
    assert upload.purpose == "batch"
    assert upload.file is None
    assert isinstance(upload.created_at, int)
    assert upload.expires_at == upload.created_at + 3600


def test_parts_complete_in_part_ids_order(client: OpenAI) -> None:
    chunks = [CONTENT[:40], CONTENT[40:100], CONTENT[100:]]
    upload = create(client, len(CONTENT))
    # Add the parts out of order; the order at completion is the one that counts.
    part_ids = dict(zip([2, 0, 1], add_parts(client, upload.id, [chunks[2], chunks[0], chunks[1]]), strict=True))
    part = client.uploads.parts.create(upload.id, data=b"")
    assert part.object == "upload.part"
    assert part.upload_id == upload.id
    assert part.id.startswith("part_")
    assert isinstance(part.created_at, int)

    done = client.uploads.complete(upload.id, part_ids=[part_ids[0], part_ids[1], part_ids[2]])
    assert done.status == "completed"
    assert done.id == upload.id
    assert done.file is not None
    assert done.file.filename == "in.jsonl"
    assert done.file.purpose == "batch"
    assert done.file.bytes == len(CONTENT)
    assert done.file.status == "processed"
    assert client.files.content(done.file.id).content == CONTENT
    assert client.files.retrieve(done.file.id).id == done.file.id


def test_complete_with_md5(client: OpenAI) -> None:
    upload = create(client, len(CONTENT))
    ids = add_parts(client, upload.id, [CONTENT])
    done = client.uploads.complete(upload.id, part_ids=ids, md5=hashlib.md5(CONTENT).hexdigest())
    assert done.status == "completed"


def test_complete_md5_mismatch(client: OpenAI) -> None:
    upload = create(client, len(CONTENT))
    ids = add_parts(client, upload.id, [CONTENT])
    with pytest.raises(openai.BadRequestError) as info:
        client.uploads.complete(upload.id, part_ids=ids, md5=hashlib.md5(b"other").hexdigest())
    assert info.value.param == "md5"


def test_complete_byte_count_mismatch(client: OpenAI) -> None:
    upload = create(client, len(CONTENT) + 1)
    ids = add_parts(client, upload.id, [CONTENT])
    with pytest.raises(openai.BadRequestError) as info:
        client.uploads.complete(upload.id, part_ids=ids)
    assert info.value.param == "bytes"
    # Still pending: a corrected completion is possible.
    ids += add_parts(client, upload.id, [b"\n"])
    done = client.uploads.complete(upload.id, part_ids=ids)
    assert done.file is not None
    assert client.files.content(done.file.id).content == CONTENT + b"\n"


def test_complete_subset_of_parts_must_match_bytes(client: OpenAI) -> None:
    upload = create_plain(client, 10)
    a, _ = add_parts(client, upload.id, [b"12345", b"67890"])
    with pytest.raises(openai.BadRequestError) as info:
        client.uploads.complete(upload.id, part_ids=[a])
    assert info.value.param == "bytes"


def test_complete_unknown_part(client: OpenAI) -> None:
    upload = create(client, len(CONTENT))
    add_parts(client, upload.id, [CONTENT])
    with pytest.raises(openai.BadRequestError) as info:
        client.uploads.complete(upload.id, part_ids=["part_doesnotexist"])
    assert info.value.param == "part_ids"


def test_part_of_another_upload_is_unknown(client: OpenAI) -> None:
    first = create_plain(client, 3)
    (foreign,) = add_parts(client, first.id, [b"abc"])
    second = create_plain(client, 3)
    add_parts(client, second.id, [b"abc"])
    with pytest.raises(openai.BadRequestError) as info:
        client.uploads.complete(second.id, part_ids=[foreign])
    assert info.value.param == "part_ids"


def test_cancel(client: OpenAI) -> None:
    upload = create(client, len(CONTENT))
    ids = add_parts(client, upload.id, [CONTENT])
    cancelled = client.uploads.cancel(upload.id)
    assert cancelled.status == "cancelled"
    assert cancelled.file is None
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload.id, data=b"more")
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload.id, part_ids=ids)


def test_no_parts_after_completion(client: OpenAI) -> None:
    upload = create_plain(client, 3)
    ids = add_parts(client, upload.id, [b"abc"])
    client.uploads.complete(upload.id, part_ids=ids)
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload.id, data=b"more")
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload.id, part_ids=ids)
    with pytest.raises(openai.BadRequestError):
        client.uploads.cancel(upload.id)


@pytest.mark.parametrize("action", ["parts", "complete", "cancel"])
def test_unknown_upload(client: OpenAI, action: str) -> None:
    missing = "upload_doesnotexist"
    with pytest.raises(openai.NotFoundError) as info:
        if action == "parts":
            client.uploads.parts.create(missing, data=b"x")
        elif action == "complete":
            client.uploads.complete(missing, part_ids=["part_x"])
        else:
            client.uploads.cancel(missing)
    e = info.value
    assert e.status_code == 404
    assert isinstance(e.body, dict)
    assert e.body["message"] == f"No such Upload object: {missing}"
    assert e.param == "id"


def test_upload_file_chunked_path(client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "chunked.jsonl"
    path.write_bytes(CONTENT)
    upload = client.uploads.upload_file_chunked(file=path, mime_type="application/jsonl", purpose="batch", part_size=17)
    assert upload.status == "completed"
    assert upload.file is not None
    assert upload.file.filename == "chunked.jsonl"
    assert client.files.content(upload.file.id).content == CONTENT


def test_upload_file_chunked_bytes(client: OpenAI) -> None:
    data = bytes(range(256)) * 3
    upload = client.uploads.upload_file_chunked(
        file=data,
        filename="blob.bin",
        bytes=len(data),
        mime_type="application/octet-stream",
        purpose="user_data",
        part_size=100,
    )
    assert upload.file is not None
    assert upload.file.bytes == len(data)
    assert client.files.content(upload.file.id).content == data


def test_upload_expires_after_applies_to_file(client: OpenAI) -> None:
    upload = create(
        client,
        3,
        purpose="user_data",
        mime_type="text/plain",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    ids = add_parts(client, upload.id, [b"abc"])
    done = client.uploads.complete(upload.id, part_ids=ids)
    assert done.file is not None
    assert done.file.expires_at == done.file.created_at + 7200


@pytest.mark.parametrize("missing", ["filename", "purpose", "bytes", "mime_type"])
def test_create_missing_parameter(server: BatchgateServer, missing: str) -> None:
    body = {"filename": "a.jsonl", "purpose": "batch", "bytes": 3, "mime_type": "application/jsonl"}
    del body[missing]
    assert_envelope(
        raw_json(server.base_url, "POST", "/uploads", body),
        400,
        code="missing_required_parameter",
        param=missing,
    )


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("bytes", "three", "invalid_type"),
        ("filename", 5, "invalid_type"),
        ("purpose", "nonsense", "invalid_value"),
    ],
)
def test_create_bad_values(server: BatchgateServer, field: str, value: Any, code: str) -> None:
    body = {"filename": "a.jsonl", "purpose": "batch", "bytes": 3, "mime_type": "application/jsonl"}
    body[field] = value
    assert_envelope(raw_json(server.base_url, "POST", "/uploads", body), 400, code=code, param=field)


def test_part_without_data_field(server: BatchgateServer, client: OpenAI) -> None:
    upload = create(client, 3)
    payload, content_type = multipart([("other", ("x.bin", b"abc"))])
    response = raw(server.base_url, "POST", f"/uploads/{upload.id}/parts", payload, {"Content-Type": content_type})
    assert_envelope(response, 400, code="missing_required_parameter", param="data")


def test_complete_part_ids_wrong_type(server: BatchgateServer, client: OpenAI) -> None:
    upload = create(client, 3)
    response = raw_json(server.base_url, "POST", f"/uploads/{upload.id}/complete", {"part_ids": "part_x"})
    assert_envelope(response, 400, code="invalid_type", param="part_ids")
    response = raw_json(server.base_url, "POST", f"/uploads/{upload.id}/complete", {})
    assert_envelope(response, 400, code="missing_required_parameter", param="part_ids")


def test_part_streamed_from_file_object(client: OpenAI) -> None:
    upload = create_plain(client, 6)
    part = client.uploads.parts.create(upload.id, data=io.BytesIO(b"abcdef"))
    done = client.uploads.complete(upload.id, part_ids=[part.id])
    assert done.file is not None
    assert client.files.content(done.file.id).content == b"abcdef"


@pytest.mark.slow
def test_part_larger_than_64_mib(client: OpenAI) -> None:
    size = 64 * 1024 * 1024 + 1
    upload = create_plain(client, size)
    with pytest.raises(openai.APIStatusError) as info:
        client.uploads.parts.create(upload.id, data=b"x" * size)
    assert info.value.status_code in {400, 413}  # the size limit's status isn't fixed by the contract
    assert isinstance(info.value.body, dict) and info.value.body["message"]
    assert client.uploads.parts.create(upload.id, data=b"x").upload_id == upload.id  # still pending


def test_parts_added_in_parallel(client: OpenAI) -> None:
    chunks = [bytes([65 + i]) * (1000 + i) for i in range(12)]
    upload = create_plain(client, sum(len(c) for c in chunks))
    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(lambda c: client.uploads.parts.create(upload.id, data=c).id, chunks))
    assert len(set(ids)) == len(ids)
    done = client.uploads.complete(upload.id, part_ids=ids)
    assert done.file is not None
    assert client.files.content(done.file.id).content == b"".join(chunks)
