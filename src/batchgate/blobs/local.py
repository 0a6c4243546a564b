"""File bytes on local disk: temp file, fsync, atomic rename. Disk calls run off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from batchgate.errors import (
    BackendUnavailable,
    BatchgateError,
    BlobMissing,
    InsufficientStorage,
    ServiceUnavailable,
    failure_reason,
)

READ_BLOCK = 4 << 20
WRITE_BUFFER = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


class LocalBlobWriter:
    def __init__(self, final: Path, tmp_dir: Path) -> None:
        self._final = final
        self._tmp = tmp_dir / f"{final.name}.{secrets.token_hex(6)}.part"
        self._fh: BinaryIO | None = None
        self._buf = bytearray()
        self.size = 0

    async def write(self, data: bytes) -> None:
        self._buf += data
        self.size += len(data)
        if len(self._buf) >= WRITE_BUFFER:
            await self._flush()

    async def _flush(self) -> None:
        buf, self._buf = bytes(self._buf), bytearray()
        try:
            await asyncio.to_thread(self._write_sync, buf)
        except OSError as e:
            await self.abort()
            raise InsufficientStorage(f"Could not store the file: {e.strerror or e}.") from e

    def _write_sync(self, buf: bytes) -> None:
        if self._fh is None:
            self._fh = open(self._tmp, "wb")
        self._fh.write(buf)

    async def commit(self) -> int:
        await self._flush()
        try:
            await asyncio.to_thread(self._commit_sync)
        except OSError as e:
            await self.abort()
            raise InsufficientStorage(f"Could not store the file: {e.strerror or e}.") from e
        return self.size

    def _commit_sync(self) -> None:
        if self._fh is None:
            self._fh = open(self._tmp, "wb")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        os.replace(self._tmp, self._final)
        dfd = os.open(self._final.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    async def abort(self) -> None:
        def drop() -> None:
            # Best effort: aborting after ENOSPC/EROFS must not raise a second, rawer error over the first.
            fh, self._fh = self._fh, None
            if fh is not None:
                with contextlib.suppress(OSError):
                    fh.close()  # the descriptor is closed even when the final flush fails
            with contextlib.suppress(OSError):
                self._tmp.unlink(missing_ok=True)

        self._buf = bytearray()
        await asyncio.to_thread(drop)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._tmp = root / ".tmp"

    async def open(self) -> None:
        def prepare() -> None:
            self._root.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(exist_ok=True)
            for leftover in self._tmp.iterdir():  # half-written files of a process that died
                leftover.unlink(missing_ok=True)

        try:
            await asyncio.to_thread(prepare)
        except OSError as e:
            raise BackendUnavailable(f"cannot use the file directory {self._root}: {failure_reason(e)}") from e

    async def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or key.startswith("."):
            raise ValueError(f"invalid blob key {key!r}")
        return self._root / key

    def writer(self, key: str) -> LocalBlobWriter:
        return LocalBlobWriter(self._path(key), self._tmp)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            fh = await asyncio.to_thread(open, self._path(key), "rb")
        except OSError as e:
            raise _read_error(key, e) from e
        try:
            await asyncio.to_thread(fh.seek, start)
            pos = start
            while end is None or pos < end:
                n = READ_BLOCK if end is None else min(READ_BLOCK, end - pos)
                block = await asyncio.to_thread(fh.read, n)
                if not block:
                    break
                pos += len(block)
                yield block
        finally:
            await asyncio.to_thread(fh.close)

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        def go() -> bytes:
            with open(self._path(key), "rb") as fh:
                fh.seek(start)
                return fh.read(end - start)

        try:
            return await asyncio.to_thread(go)
        except OSError as e:
            raise _read_error(key, e) from e

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).exists)


def _read_error(key: str, e: OSError) -> BatchgateError:
    if isinstance(e, FileNotFoundError):
        return BlobMissing(key)
    return ServiceUnavailable(f"Could not read file {key}: {e.strerror or e}.")
