"""File bytes in S3-compatible object storage (AWS S3, MinIO, Ceph, R2, ...), through aiobotocore.

An object appears only when its writer commits: small files are one PutObject, larger ones a multipart upload
whose parts are sent as they fill (one part in memory at a time) and which becomes visible at
CompleteMultipartUpload. Reads are ranged GETs streamed in blocks.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from batchgate.errors import BackendUnavailable, BlobMissing, ServiceUnavailable
from batchgate.logs import redact_url

READ_BLOCK = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")
_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ends with "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """`s3://bucket` or `s3://bucket/some/prefix`."""
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url!r}")
        prefix = prefix.strip("/")
        return cls(bucket, prefix + "/" if prefix else "")


@dataclass(frozen=True, slots=True)
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    part_size: int = 8 << 20
    max_connections: int = 64


def _reason(e: ClientError | BotoCoreError) -> str:
    if isinstance(e, ClientError):
        code = str(e.response.get("Error", {}).get("Code"))
        if code in _MISSING or code == "NoSuchBucket":
            return "no such bucket"
        if code in ("403", "AccessDenied", "Forbidden"):
            return "access denied (check the access key and the bucket's policy)"
    return str(e)


def _missing(e: ClientError) -> bool:
    return str(e.response.get("Error", {}).get("Code")) in _MISSING


class S3BlobWriter:
    def __init__(self, client: Any, bucket: str, key: str, part_size: int) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.size = 0

    async def write(self, data: bytes) -> None:
        self._buf += data
        self.size += len(data)
        if len(self._buf) >= self._part_size:
            # A part may exceed part_size by one write: every part but the last only has a minimum size.
            part, self._buf = bytes(self._buf), bytearray()
            await self._guard(self._send_part(part))

    async def _send_part(self, body: bytes) -> None:
        if self._upload_id is None:
            created = await self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        sent = await self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    async def commit(self) -> int:
        await self._guard(self._finish())
        return self.size

    async def _finish(self) -> None:
        rest, self._buf = bytes(self._buf), bytearray()
        if self._upload_id is None:
            await self._client.put_object(Bucket=self._bucket, Key=self._key, Body=rest)
            return
        if rest:
            await self._send_part(rest)
        await self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        self._upload_id = None

    async def _guard(self, op: Any) -> None:
        try:
            await op
        except (ClientError, BotoCoreError) as e:
            await self.abort()
            raise ServiceUnavailable(f"Could not store the file: object storage failed ({e}).") from e

    async def abort(self) -> None:
        self._buf = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            try:
                await self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)
            except (ClientError, BotoCoreError):
                pass  # a bucket lifecycle rule for incomplete multipart uploads cleans up (docs/operations.md)


class S3BlobStore:
    def __init__(self, location: S3Location, options: S3Options) -> None:
        self._loc = location
        self._opt = options
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    async def open(self) -> None:
        o = self._opt
        config = AioConfig(
            max_pool_connections=o.max_connections,
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path"} if o.endpoint_url else None,
        )
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=o.endpoint_url, region_name=o.region, aws_access_key_id=o.access_key_id,
            aws_secret_access_key=o.secret_access_key, config=config,
        ))
        self._stack = stack
        try:
            await self._client.head_bucket(Bucket=self._loc.bucket)
        except (ClientError, BotoCoreError) as e:
            await self.close()
            where = f" at {redact_url(o.endpoint_url)}" if o.endpoint_url else ""
            raise BackendUnavailable(f"cannot use S3 bucket {self._loc.bucket!r}{where}: {_reason(e)}") from e

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
            self._client = None

    def _key(self, key: str) -> str:
        if not _KEY.match(key) or key.startswith("."):
            raise ValueError(f"invalid blob key {key!r}")
        return self._loc.prefix + key

    def writer(self, key: str) -> S3BlobWriter:
        return S3BlobWriter(self._client, self._loc.bucket, self._key(key), self._opt.part_size)

    async def _get(self, key: str, start: int, end: int | None) -> Any:
        args: dict[str, Any] = {"Bucket": self._loc.bucket, "Key": self._key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            return await self._client.get_object(**args)
        except ClientError as e:
            if _missing(e):
                raise BlobMissing(key) from e
            if e.response.get("Error", {}).get("Code") == "InvalidRange":
                return None  # the range starts at or past the end of the object
            raise ServiceUnavailable(f"Could not read file {key}: object storage failed ({e}).") from e
        except BotoCoreError as e:
            raise ServiceUnavailable(f"Could not read file {key}: object storage failed ({e}).") from e

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            return
        got = await self._get(key, start, end)
        if got is None:
            return
        async with got["Body"] as body:
            async for block in body.iter_chunks(READ_BLOCK):
                yield block

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        got = await self._get(key, start, end)
        if got is None:
            return b""
        async with got["Body"] as body:
            data: bytes = await body.read()
            return data

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self._loc.bucket, Key=self._key(key))

    async def exists(self, key: str) -> bool:
        try:
            await self._client.head_object(Bucket=self._loc.bucket, Key=self._key(key))
        except ClientError as e:
            if _missing(e):
                return False
            raise
        return True
