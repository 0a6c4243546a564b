"""Storing, listing, reading and deleting files, scoped to a project."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from batchgate import clock, ids
from batchgate.blobs.base import BlobStore
from batchgate.domain import limits
from batchgate.domain.files import StoredFile
from batchgate.domain.validation import peek_is_jsonl
from batchgate.errors import InvalidRequest, NotFound, PayloadTooLarge
from batchgate.protocol.requests import CreateFile
from batchgate.services.auth import Principal
from batchgate.store.base import FileStore, Page

HEAD_LIMIT = 1 << 20  # bytes kept to check the first line of a purpose=batch upload


def default_expiry(purpose: str) -> int | None:
    return limits.BATCH_FILE_DEFAULT_EXPIRY if purpose == "batch" else None


class FileService:
    def __init__(self, store: FileStore, blobs: BlobStore, max_bytes: int) -> None:
        self._store = store
        self._blobs = blobs
        self._max_bytes = max_bytes

    def receive(self, hashed: bool = False) -> IncomingFile:
        """Start receiving bytes for a new file; nothing is visible until `store` succeeds. `hashed`: keep a
        SHA-256 of the bytes as they arrive (an idempotent create compares uploads by it)."""
        return IncomingFile(self._blobs, self._max_bytes, hashed)

    async def store(self, who: Principal, incoming: IncomingFile, req: CreateFile) -> StoredFile:
        if req.purpose == "batch" and not _looks_like_jsonl(bytes(incoming.head)):
            await incoming.abort()
            raise InvalidRequest(
                "Invalid file format for Batch API. Must be .jsonl", param="file", code="invalid_file_format"
            )
        size = await incoming.commit()
        return await self.register(who, incoming.id, req.filename, req.purpose, size, req.expires_after)

    async def create(self, who: Principal, req: CreateFile, chunks: AsyncIterable[bytes]) -> StoredFile:
        incoming = self.receive()
        try:
            async for chunk in chunks:
                await incoming.write(chunk)
        except BaseException:
            await incoming.abort()
            raise
        return await self.store(who, incoming, req)

    async def register(
        self, who: Principal, file_id: str, filename: str, purpose: str, size: int, expires_after: int | None
    ) -> StoredFile:
        """Record a File whose bytes are already stored under `file_id`."""
        now = clock.now()
        seconds = expires_after if expires_after is not None else default_expiry(purpose)
        f = StoredFile(file_id, who.project, size, now, _safe_name(filename), purpose,
                       now + seconds if seconds is not None else None)
        await self._store.insert_file(f)
        return f

    async def get(self, who: Principal, file_id: str) -> StoredFile:
        f = await self._store.get_file(file_id)
        if f is None or (f.project != who.project and not who.admin) or f.expired(clock.now()):
            raise NotFound(f"No such File object: {file_id}", param="id")
        return f

    async def list(
        self, who: Principal, purpose: str | None, ascending: bool, after: str | None, limit: int
    ) -> Page[StoredFile]:
        project = None if who.admin else who.project  # admin keys see every project's files
        return await self._store.list_files(project, purpose, ascending, after, limit, clock.now())

    async def delete(self, who: Principal, file_id: str) -> None:
        """Hide the file from every API at once. Its bytes go now if no unfinished batch reads it, else once the
        last such batch ends (`purge`): a running batch whose input is deleted completes, as on OpenAI."""
        await self.get(who, file_id)
        if await self._store.delete_file(file_id):
            for gone in await self._store.purgeable_files(clock.now(), 1, file_id):
                await self._purge(gone)

    async def content(self, who: Principal, file_id: str) -> tuple[StoredFile, AsyncIterator[bytes]]:
        f = await self.get(who, file_id)
        blocks = self._blobs.read(file_id)
        # The first block is read before any answer is sent: bytes missing from storage are a clear 404
        # (errors.BlobMissing), not a 200 whose body breaks off.
        first = await anext(blocks, None)
        return f, _resume(first, blocks)

    async def purge(self, limit: int = 500) -> int:
        """Remove the bytes of deleted and expired files that no unfinished batch reads (a worker chore)."""
        gone = await self._store.purgeable_files(clock.now(), limit)
        for file_id in gone:
            await self._purge(file_id)
        return len(gone)

    async def _purge(self, file_id: str) -> None:
        await self._blobs.delete(file_id)  # bytes first: a purge cut short is done again by the next chore
        await self._store.mark_purged(file_id)


class IncomingFile:
    """Bytes of a file being received: size-capped (unless max_bytes is 0), head kept for the format check."""

    def __init__(self, blobs: BlobStore, max_bytes: int, hashed: bool = False) -> None:
        self.id = ids.file_id()
        self._writer = blobs.writer(self.id)
        self._max_bytes = max_bytes
        self.head = bytearray()
        self._sha = hashlib.sha256() if hashed else None

    @property
    def sha256(self) -> bytes:
        """The digest of the bytes received so far (only when received with `hashed`)."""
        if self._sha is None:
            raise RuntimeError("this file is received without a hash")
        return self._sha.digest()

    async def write(self, chunk: bytes) -> None:
        if self._max_bytes and self._writer.size + len(chunk) > self._max_bytes:
            raise PayloadTooLarge(f"File is larger than the {self._max_bytes} byte limit.", param="file")
        if len(self.head) < HEAD_LIMIT:
            self.head += chunk[: HEAD_LIMIT - len(self.head)]
        if self._sha is not None:
            self._sha.update(chunk)
        await self._writer.write(chunk)

    async def commit(self) -> int:
        return await self._writer.commit()

    async def abort(self) -> None:
        await self._writer.abort()


async def _resume(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            yield first
            async for block in rest:
                yield block
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()


def _looks_like_jsonl(head: bytes) -> bool:
    if len(head) >= HEAD_LIMIT and b"\n" not in head:
        return True  # a first line longer than the head; the batch validator judges it line by line
    return peek_is_jsonl(head)


def _safe_name(filename: str) -> str:
    """Keep only the last path component: a filename is a label, never a path."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    return name[:255] or "upload"
