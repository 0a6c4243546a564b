"""/v1/files: upload (streamed), list, retrieve, delete, content."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.context import JSON, ctx, principal
from batchgate.api.multipart import read_form
from batchgate.domain import limits
from batchgate.errors import MissingParameter, PayloadTooLarge
from batchgate.protocol import objects, params
from batchgate.protocol.requests import CreateFile
from batchgate.services.files import IncomingFile


async def create_file(request: Request) -> Response:
    who = await principal(request, rate="uploads")
    c = ctx(request)
    declared = request.headers.get("content-length")
    limit = c.settings.max_upload_bytes
    if limit and declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise PayloadTooLarge(f"File is larger than the {limit} byte limit.", param="file")

    async def open_sink() -> IncomingFile:
        return c.files.receive()

    form = await read_form(request, "file", open_sink)
    incoming: IncomingFile | None = form.sink
    try:
        if incoming is None:
            raise MissingParameter("file")
        f = await c.files.store(who, incoming, CreateFile.from_form(form.fields, form.filename))
    except BaseException:
        if incoming is not None:
            await incoming.abort()
        raise
    return JSON(objects.file_object(f))


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
