"""/v1/files: upload (streamed), list, retrieve, delete, content."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.context import JSON, Context, ctx, principal
from batchgate.api.multipart import read_form
from batchgate.domain import limits
from batchgate.domain.files import StoredFile
from batchgate.domain.idempotency import HEADER, CreateKind
from batchgate.errors import MissingParameter, PayloadTooLarge
from batchgate.protocol import objects, params
from batchgate.protocol.requests import CreateFile
from batchgate.services.auth import Principal
from batchgate.services.files import IncomingFile
from batchgate.services.idempotency import checked_key, replayed, request_hash


async def create_file(request: Request) -> Response:
    who = await principal(request, rate="uploads")
    c = ctx(request)
    declared = request.headers.get("content-length")
    limit = c.settings.max_upload_bytes
    if limit and declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise PayloadTooLarge(f"File is larger than the {limit} byte limit.", param="file")

    key = checked_key(request.headers.get(HEADER))

    async def open_sink() -> IncomingFile:
        return c.files.receive(hashed=key is not None)

    form = await read_form(request, "file", open_sink)
    incoming: IncomingFile | None = form.sink
    try:
        if incoming is None:
            raise MissingParameter("file")
        req = CreateFile.from_form(form.fields, form.filename)
        if key is None:
            f, created = await c.files.store(who, incoming, req), True
        else:
            f, created = await _create_once(c, who, key, incoming, req)
    except BaseException:
        if incoming is not None:
            await incoming.abort()
        raise
    return JSON(objects.file_object(f), headers=replayed(created) if key is not None else None)


async def _create_once(
    c: Context, who: Principal, key: str, incoming: IncomingFile, req: CreateFile
) -> tuple[StoredFile, bool]:
    """POST /v1/files with an Idempotency-Key: the bytes (hashed while they streamed in) and the form's fields
    name the request; a repeat gets the file the first one stored, and its own upload is thrown away."""
    digest = request_hash(b"POST /v1/files", incoming.sha256, req.purpose.encode(), req.filename.encode(),
                          str(req.expires_after).encode())
    f, created = await c.idempotency.create(
        who, key, CreateKind.FILE, digest, lambda: c.files.store(who, incoming, req),
        lambda file_id: c.files.get(who, file_id), lambda made: made.id,
    )
    if not created:
        await incoming.abort()
    return f, created


async def list_files(request: Request) -> Response:
    who = await principal(request)
    q = request.query_params
    limit = params.query_int(q, "limit", limits.FILES_LIST_MAX, 1, limits.FILES_LIST_MAX)
    order = params.query_choice(q, "order", "desc", ("asc", "desc"))
    page = await ctx(request).files.list(who, q.get("purpose") or None, order == "asc", q.get("after") or None,
                                         limit)
    return JSON(objects.list_object([objects.file_object(f) for f in page.items], page.has_more))


async def retrieve_file(request: Request) -> Response:
    who = await principal(request)
    f = await ctx(request).files.get(who, request.path_params["file_id"])
    return JSON(objects.file_object(f))


async def delete_file(request: Request) -> Response:
    who = await principal(request)
    file_id = request.path_params["file_id"]
    await ctx(request).files.delete(who, file_id)
    return JSON(objects.file_deleted(file_id))


async def file_content(request: Request) -> Response:
    who = await principal(request)
    f, body = await ctx(request).files.content(who, request.path_params["file_id"])
    return StreamingResponse(body, media_type="application/octet-stream",
                             headers={"content-length": str(f.bytes)})


routes = [
    Route("/v1/files", create_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
    Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
]
