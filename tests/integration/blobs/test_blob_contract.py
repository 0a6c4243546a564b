"""Behaviour every BlobStore must have. Runs on local disk and on a real S3 API server (moto) on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from s3tools import ACCESS_KEY, REGION, SECRET_KEY, MotoServer

from batchgate.blobs.base import BlobStore
from batchgate.blobs.local import LocalBlobStore
from batchgate.blobs.s3 import S3BlobStore, S3Location, S3Options
from batchgate.errors import BlobMissing

PART = 5 << 20  # S3's smallest part size
MAX_BLOCK = 8 << 20  # reads are streamed in blocks no larger than this (whatever the adapter's block size)
Body = Callable[[BlobStore], Awaitable[None]]
_buckets = itertools.count()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def run_with_blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Body], Any]:
    def make() -> BlobStore:
        if request.param == "local":
            return LocalBlobStore(tmp_path / "files")
        moto: MotoServer = request.getfixturevalue("moto")
        bucket = f"contract-{next(_buckets)}"
        moto.create_bucket(bucket)
        request.node.s3 = (moto, bucket)
        return S3BlobStore(S3Location.parse(f"s3://{bucket}/some/prefix"), S3Options(
            endpoint_url=moto.url, region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
            part_size=PART))

    def run(body: Body) -> Any:
        blobs = make()

        async def go() -> None:
            await blobs.open()
            try:
                await body(blobs)
            finally:
                await blobs.close()

        asyncio.run(go())
        return getattr(request.node, "s3", None)

    return run


async def collect(blobs: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([block async for block in blobs.read(key, start, end)])


def pattern(n: int) -> bytes:
    """n deterministic, non-repeating-looking bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


def test_nothing_is_visible_before_commit(run_with_blobs: Callable[[Body], Any]) -> None:
    async def body(blobs: BlobStore) -> None:
        w = blobs.writer("file-a")
        await w.write(b"hello ")
        await w.write(b"world\n")
        assert not await blobs.exists("file-a")
        with pytest.raises(BlobMissing):
            await collect(blobs, "file-a")
        assert await w.commit() == 12
        assert await blobs.exists("file-a")
        assert await collect(blobs, "file-a") == b"hello world\n"

    run_with_blobs(body)


def test_ranges_and_streaming(run_with_blobs: Callable[[Body], Any]) -> None:
    async def body(blobs: BlobStore) -> None:
        data = pattern(3_000_000)
        w = blobs.writer("file-b")
        for i in range(0, len(data), 100_000):
            await w.write(data[i:i + 100_000])
        await w.commit()
        assert await blobs.read_range("file-b", 10, 20) == data[10:20]
        assert await blobs.read_range("file-b", 2_999_990, 3_000_000) == data[-10:]
        assert await blobs.read_range("file-b", 5, 5) == b""
        assert await blobs.read_range("file-b", 2_999_995, 4_000_000) == data[-5:]  # clipped at the end
        assert await blobs.read_range("file-b", 3_000_000, 3_000_010) == b""  # past the end
        blocks = [b async for b in blobs.read("file-b")]
        assert b"".join(blocks) == data and max(map(len, blocks)) <= MAX_BLOCK
        assert await collect(blobs, "file-b", 1_000_000, 2_500_001) == data[1_000_000:2_500_001]
        assert await collect(blobs, "file-b", 2_999_999) == data[-1:]

    run_with_blobs(body)


def test_empty_file(run_with_blobs: Callable[[Body], Any]) -> None:
    async def body(blobs: BlobStore) -> None:
        assert await blobs.writer("file-empty").commit() == 0
        assert await blobs.exists("file-empty")
        assert await collect(blobs, "file-empty") == b""
        assert await blobs.read_range("file-empty", 0, 10) == b""

    run_with_blobs(body)


def test_abort_leaves_nothing(run_with_blobs: Callable[[Body], Any]) -> None:
    async def body(blobs: BlobStore) -> None:
        w = blobs.writer("file-c")
        await w.write(pattern(PART + 1000))  # large enough to have started a multipart upload on S3
        await w.abort()
        assert not await blobs.exists("file-c")

    s3 = run_with_blobs(body)
    if s3 is not None:
        moto, bucket = s3
        assert not moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads")
        assert not moto.client().list_objects_v2(Bucket=bucket).get("Contents")


def test_delete_and_missing(run_with_blobs: Callable[[Body], Any]) -> None:
    async def body(blobs: BlobStore) -> None:
        w = blobs.writer("file-d")
        await w.write(b"x")
        await w.commit()
        await blobs.delete("file-d")
        await blobs.delete("file-d")  # deleting twice is fine
        assert not await blobs.exists("file-d")
        with pytest.raises(BlobMissing):
            await blobs.read_range("file-d", 0, 1)
        with pytest.raises(ValueError):
            blobs.writer("../escape")

    run_with_blobs(body)


def test_large_file_is_streamed_in_parts(run_with_blobs: Callable[[Body], Any]) -> None:
    size = 6 * PART + 12345
    block = 256 * 1024
    data = pattern(size)

    async def body(blobs: BlobStore) -> None:
        w = blobs.writer("file-big")
        tracemalloc.start()
        try:
            for i in range(0, size, block):
                await w.write(data[i:i + block])
            assert await w.commit() == size
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # never the whole file (7 parts): about one part buffered plus the copy being sent
        assert peak < 3 * PART, peak
        digest = hashlib.sha256()
        blocks = 0
        async for chunk in blobs.read("file-big"):
            assert len(chunk) <= MAX_BLOCK
            digest.update(chunk)
            blocks += 1
        assert digest.digest() == hashlib.sha256(data).digest() and blocks > 1

    s3 = run_with_blobs(body)
    if s3 is not None:
        moto, bucket = s3
        head = moto.client().head_object(Bucket=bucket, Key="some/prefix/file-big")
        assert head["ETag"].strip('"').endswith("-7")  # a multipart upload of 7 parts
