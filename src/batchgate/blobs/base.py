"""The BlobStore protocol: write once (atomically), read by byte range, delete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol


class BlobWriter(Protocol):
    """Bytes go in with write(); nothing is visible under the key until commit() returns."""

    size: int

    async def write(self, data: bytes) -> None: ...
    async def commit(self) -> int: ...
    async def abort(self) -> None: ...


class BlobStore(Protocol):
    """Reading a key that holds nothing raises errors.BlobMissing, whatever the backend."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def writer(self, key: str) -> BlobWriter: ...
    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...
    async def read_range(self, key: str, start: int, end: int) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...


async def read_ahead(blocks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The same blocks, with the next one already being read while the caller works on the current one (a
    local read runs on a thread, an S3 read on the network: either overlaps the caller's CPU work)."""
    nxt: asyncio.Future[bytes | None] = asyncio.ensure_future(anext(blocks, None))
    try:
        while (block := await nxt) is not None:
            nxt = asyncio.ensure_future(anext(blocks, None))
            yield block
    finally:
        if not nxt.done():
            nxt.cancel()
            await asyncio.gather(nxt, return_exceptions=True)
        aclose = getattr(blocks, "aclose", None)
        if aclose is not None:
            await aclose()
