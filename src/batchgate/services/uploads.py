"""Multi-part uploads: create, add parts, assemble them into a File in the order given, cancel."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from batchgate import clock, ids
from batchgate.blobs.base import BlobStore, BlobWriter
from batchgate.domain import limits
from batchgate.domain.files import StoredFile, Upload, UploadPart, UploadStatus
from batchgate.errors import InvalidRequest, InvalidValue, NotFound, PayloadTooLarge
from batchgate.protocol.requests import CompleteUpload, CreateUpload
from batchgate.services.auth import Principal
from batchgate.services.files import FileService
from batchgate.store.base import UploadFiles


class UploadService:
    def __init__(self, store: UploadFiles, blobs: BlobStore, files: FileService) -> None:
        self._store = store
        self._blobs = blobs
        self._files = files

    async def create(self, who: Principal, req: CreateUpload) -> Upload:
        now = clock.now()
        u = Upload(ids.upload_id(), who.project, req.bytes, now, now + limits.UPLOAD_LIFETIME, req.filename,
                   req.purpose, req.mime_type, UploadStatus.PENDING, req.expires_after)
        await self._store.insert_upload(u)
        return u

    async def get(self, who: Principal, upload_id: str) -> Upload:
        u = await self._store.get_upload(upload_id)
        if u is None or (u.project != who.project and not who.admin):
            raise NotFound(f"No such Upload object: {upload_id}", param="id")
        return u

    async def file_of(self, u: Upload) -> StoredFile | None:
        return await self._store.get_file(u.file_id) if u.file_id else None

    async def _pending(self, who: Principal, upload_id: str) -> Upload:
        u = await self.get(who, upload_id)
        status = u.effective_status(clock.now())
        if status is not UploadStatus.PENDING:
            raise InvalidRequest(
                f"Upload {upload_id} is {status.value}; it no longer accepts changes.", param="upload_id",
                code="invalid_state",
            )
        return u

    async def open_part(self, who: Principal, upload_id: str) -> IncomingPart:
        u = await self._pending(who, upload_id)
        part_id = ids.part_id()
        return IncomingPart(u.id, part_id, self._blobs.writer(part_id))

    async def save_part(self, who: Principal, part: IncomingPart) -> UploadPart:
        await self._pending(who, part.upload_id)  # it may have been cancelled while the part streamed in
        size = await part.writer.commit()
        saved = UploadPart(part.id, part.upload_id, clock.now(), size, part.md5.hexdigest())
        await self._store.insert_part(saved)
        return saved

    async def complete(self, who: Principal, upload_id: str, req: CompleteUpload) -> tuple[Upload, StoredFile]:
        part_ids, want_md5 = req.part_ids, req.md5
        u = await self._pending(who, upload_id)
        parts = {p.id: p for p in await self._store.get_parts(u.id)}
        if len(set(part_ids)) != len(part_ids):
            raise InvalidValue("Each part may appear only once in 'part_ids'.", param="part_ids")
        for pid in part_ids:
            if pid not in parts:
                raise InvalidValue(f"Part {pid} does not belong to upload {u.id}.", param="part_ids")
        total = sum(parts[p].bytes for p in part_ids)
        if total != u.bytes:
            raise InvalidValue(
                f"The uploaded parts add up to {total} bytes, but the upload was created with {u.bytes} bytes.",
                param="bytes",
            )
        digest = hashlib.md5(usedforsecurity=False)

        async def assembled() -> AsyncIterator[bytes]:
            for pid in part_ids:
                async for block in self._blobs.read(pid):
                    digest.update(block)
                    yield block

        file_id = ids.file_id()
        writer = self._blobs.writer(file_id)
        try:
            async for block in assembled():
                await writer.write(block)
            if want_md5 and want_md5.lower() != digest.hexdigest():
                raise InvalidValue(
                    f"The md5 checksum '{want_md5}' does not match the assembled file ({digest.hexdigest()}).",
                    param="md5",
                )
            size = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        f = await self._files.register(who, file_id, u.filename, u.purpose, size, u.file_expires_after)
        if not await self._store.set_upload_status(u.id, UploadStatus.COMPLETED, file_id):
            raise InvalidRequest(f"Upload {u.id} is no longer pending.", param="upload_id", code="invalid_state")
        for pid in parts:
            await self._blobs.delete(pid)
        return await self.get(who, u.id), f

    async def cancel(self, who: Principal, upload_id: str) -> Upload:
        u = await self._pending(who, upload_id)
        await self._store.set_upload_status(u.id, UploadStatus.CANCELLED)
        for p in await self._store.get_parts(u.id):
            await self._blobs.delete(p.id)
        return await self.get(who, u.id)


class IncomingPart:
    """Bytes of one upload part being received (at most 64 MiB)."""

    def __init__(self, upload_id: str, part_id: str, writer: BlobWriter) -> None:
        self.upload_id = upload_id
        self.id = part_id
        self.writer = writer
        self.md5 = hashlib.md5(usedforsecurity=False)

    async def write(self, chunk: bytes) -> None:
        if self.writer.size + len(chunk) > limits.UPLOAD_PART_MAX_BYTES:
            raise PayloadTooLarge(f"Upload parts are limited to {limits.UPLOAD_PART_MAX_BYTES} bytes.", param="data")
        self.md5.update(chunk)
        await self.writer.write(chunk)

    async def abort(self) -> None:
        await self.writer.abort()
