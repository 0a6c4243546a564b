"""Files API through the official SDK: upload, retrieve, content, delete, list and pagination."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import BatchgateServer
from helpers import chat_line, jsonl
from openai import AsyncOpenAI, OpenAI

FILE_ID = re.compile(r"^file-[A-Za-z0-9]{22}$")
THIRTY_DAYS = 2592000
BAD_FORMAT = "Invalid file format for Batch API. Must be .jsonl"
VALID = jsonl([chat_line("a"), chat_line("b")])


@pytest.fixture(scope="module")
def files_server(module_server_factory: Any) -> BatchgateServer:
    """A server of its own, so listings see only this module's files."""
    return module_server_factory()  # type: ignore[no-any-return]


@pytest.fixture
def fclient(files_server: BatchgateServer) -> Iterator[OpenAI]:
    client = files_server.client()
    yield client
    client.close()


def test_upload_bytes_batch_purpose(fclient: OpenAI) -> None:
    f = fclient.files.create(file=VALID, purpose="batch")
    assert FILE_ID.match(f.id), f.id
    assert f.object == "file"
    assert f.bytes == len(VALID)
    assert f.filename == "upload"  # the SDK's name for raw bytes
    assert f.purpose == "batch"
    assert f.status == "processed"
    assert f.status_details is None
    assert isinstance(f.created_at, int)
    assert f.expires_at == f.created_at + THIRTY_DAYS
    assert f._request_id  # x-request-id header


def test_upload_path_keeps_basename(fclient: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "my input.jsonl"
    path.write_bytes(VALID)
    f = fclient.files.create(file=path, purpose="batch")
    assert f.filename == "my input.jsonl"
    assert fclient.files.content(f.id).content == VALID


def test_upload_tuple_and_other_purpose_never_expires(fclient: OpenAI) -> None:
    f = fclient.files.create(file=("notes.txt", b"not json at all", "text/plain"), purpose="user_data")
    assert f.filename == "notes.txt"
    assert f.purpose == "user_data"
    assert f.expires_at is None
    assert f.status == "processed"
    again = fclient.files.retrieve(f.id)
    assert again.model_dump() == f.model_dump()


def test_expires_after(fclient: OpenAI) -> None:
    f = fclient.files.create(
        file=("x.txt", b"abc"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert f.expires_at == f.created_at + 3600
    g = fclient.files.create(file=VALID, purpose="batch", expires_after={"anchor": "created_at", "seconds": 2592000})
    assert g.expires_at == g.created_at + 2592000


@pytest.mark.parametrize(
    ("expires_after", "param"),
    [
        ({"anchor": "created_at", "seconds": 3599}, "expires_after.seconds"),
        ({"anchor": "created_at", "seconds": 2592001}, "expires_after.seconds"),
        ({"anchor": "last_active_at", "seconds": 3600}, "expires_after.anchor"),
    ],
)
def test_expires_after_out_of_range(fclient: OpenAI, expires_after: Any, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        fclient.files.create(file=("x.txt", b"abc"), purpose="user_data", expires_after=expires_after)
    assert info.value.status_code == 400
    assert info.value.param == param
    assert info.value.code == "invalid_value"


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", b"hello, this is not json\n", b"[1, 2, 3]\n", b'"a string"\n', b"{broken\n"],
    ids=["empty", "blank", "text", "array", "string", "broken-object"],
)
def test_batch_purpose_rejects_non_jsonl(fclient: OpenAI, content: bytes) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        fclient.files.create(file=content, purpose="batch")
    e = info.value
    assert e.status_code == 400
    assert BAD_FORMAT in str(e)
    assert isinstance(e.body, dict) and e.body["message"] == BAD_FORMAT
    assert e.param == "file"
    assert e.code == "invalid_file_format"


def test_batch_purpose_checks_first_nonblank_line_only(fclient: OpenAI) -> None:
    content = b"\n\n" + jsonl([chat_line("a")]) + b"this line is broken\n"
    f = fclient.files.create(file=content, purpose="batch")
    assert f.bytes == len(content)
    assert fclient.files.content(f.id).content == content


def test_content_is_byte_exact(fclient: OpenAI) -> None:
    content = bytes(range(256)) * 40 + "\r\nünïcödé ✓\r\n".encode() + b"\x00\xff"
    f = fclient.files.create(file=("blob.bin", content), purpose="user_data")
    assert f.bytes == len(content)
    assert fclient.files.content(f.id).content == content
    with fclient.files.with_streaming_response.content(f.id) as response:
        assert b"".join(response.iter_bytes()) == content


def test_retrieve_unknown(fclient: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        fclient.files.retrieve("file-doesnotexist0000000000")
    e = info.value
    assert e.status_code == 404
    assert isinstance(e.body, dict)
    assert e.body["message"] == "No such File object: file-doesnotexist0000000000"
    assert e.param == "id"
    assert e.type == "invalid_request_error"
    assert e.request_id  # x-request-id on errors too


def test_delete(fclient: OpenAI) -> None:
    f = fclient.files.create(file=("x.txt", b"abc"), purpose="user_data")
    deleted = fclient.files.delete(f.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (f.id, "file", True)
    for call in (fclient.files.retrieve, fclient.files.content, fclient.files.delete):
        with pytest.raises(openai.NotFoundError) as info:
            call(f.id)
        assert info.value.param == "id"
        assert isinstance(info.value.body, dict)
        assert info.value.body["message"] == f"No such File object: {f.id}"
    assert f.id not in {x.id for x in fclient.files.list()}


def test_raw_file_object_has_every_key(files_server: BatchgateServer, fclient: OpenAI) -> None:
    f = fclient.files.with_raw_response.create(file=VALID, purpose="batch")
    assert f.headers["content-type"].startswith("application/json")
    body = json.loads(f.content)
    expected = {
        "id",
        "object",
        "bytes",
        "created_at",
        "expires_at",
        "filename",
        "purpose",
        "status",
        "status_details",
    }
    assert expected <= set(body)
    assert body["status_details"] is None


def test_list_order_filter_and_pagination(files_server: BatchgateServer) -> None:
    client = files_server.client()
    purpose = "evals"
    created = []
    for i in range(3):
        created.append(client.files.create(file=(f"f{i}.txt", b"x"), purpose=purpose).id)
        time.sleep(1.05)  # distinct created_at seconds, so the order of these three is unambiguous
    for i in range(3, 7):
        created.append(client.files.create(file=(f"f{i}.txt", b"x"), purpose=purpose).id)
    other = client.files.create(file=("other.txt", b"y"), purpose="user_data").id

    page = client.files.list(purpose=purpose)
    ids = [f.id for f in page.data]
    assert set(ids) == set(created)
    assert other not in ids
    assert page.has_more is False
    assert ids[-3:] == created[:3][::-1]  # default order: newest first
    stamps = [f.created_at for f in page.data]
    assert stamps == sorted(stamps, reverse=True)

    asc = [f.id for f in client.files.list(purpose=purpose, order="asc").data]
    assert asc == ids[::-1]
    assert asc[:3] == created[:3]

    # The SDK follows `after` page by page; the pages must add up to the unpaginated list.
    assert [f.id for f in client.files.list(purpose=purpose, limit=2)] == ids
    assert [f.id for f in client.files.list(purpose=purpose, limit=3, order="asc")] == asc

    first = client.files.list(purpose=purpose, limit=3)
    assert first.has_more is True
    assert [f.id for f in first.data] == ids[:3]
    assert first.first_id == ids[0]  # type: ignore[attr-defined]
    assert first.last_id == ids[2]  # type: ignore[attr-defined]
    exact = client.files.list(purpose=purpose, limit=7)
    assert exact.has_more is False
    tail = client.files.list(purpose=purpose, limit=3, after=ids[4])
    assert [f.id for f in tail.data] == ids[5:]
    assert tail.has_more is False

    everything = [f.id for f in client.files.list()]
    assert set(created) | {other} <= set(everything)
    client.close()


def test_list_empty_page(files_server: BatchgateServer) -> None:
    client = files_server.client()
    page = client.files.list(purpose="fine-tune")
    assert page.data == []
    assert page.has_more is False
    assert page.object == "list"  # type: ignore[attr-defined]
    client.close()


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 10001}, {"order": "sideways"}])
def test_list_bad_query(fclient: OpenAI, query: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        fclient.files.list(**query)
    assert info.value.param == next(iter(query))


def test_list_unknown_purpose_is_empty(fclient: OpenAI) -> None:
    page = fclient.files.list(purpose="no-such-purpose")
    assert page.data == []
    assert page.has_more is False


def test_list_limit_upper_bound_ok(fclient: OpenAI) -> None:
    assert fclient.files.list(limit=10000).has_more is False


def test_wait_for_processing(fclient: OpenAI) -> None:
    f = fclient.files.create(file=VALID, purpose="batch")
    assert fclient.files.wait_for_processing(f.id, poll_interval=0.1, max_wait_seconds=5).status == "processed"


def test_async_client(files_server: BatchgateServer) -> None:
    async def go() -> None:
        async with AsyncOpenAI(base_url=files_server.base_url, api_key="test", max_retries=0) as client:
            f = await client.files.create(file=("async.jsonl", VALID), purpose="batch")
            assert (await client.files.content(f.id)).content == VALID
            ids = [x.id async for x in client.files.list(limit=1)]
            assert f.id in ids
            with pytest.raises(openai.NotFoundError):
                await client.files.retrieve("file-nope")

    asyncio.run(go())
