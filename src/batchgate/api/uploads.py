"""/v1/uploads: create, add parts (streamed), complete, cancel."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate import clock
from batchgate.api.context import JSON, ctx, json_body, principal
from batchgate.api.multipart import read_form
from batchgate.errors import MissingParameter
from batchgate.protocol import objects
from batchgate.protocol.requests import CompleteUpload, CreateUpload
from batchgate.services.uploads import IncomingPart


async def create_upload(request: Request) -> Response:
    who = await principal(request, rate="uploads")
    u = await ctx(request).uploads.create(who, CreateUpload.from_json(await json_body(request)))
    return JSON(objects.upload_object(u, clock.now()))


async def add_part(request: Request) -> Response:
    who = await principal(request)
    uploads = ctx(request).uploads
    upload_id = request.path_params["upload_id"]
    await uploads.get(who, upload_id)

    async def open_sink() -> IncomingPart:
        return await uploads.open_part(who, upload_id)

    form = await read_form(request, "data", open_sink)
    if form.sink is None:
        raise MissingParameter("data")
    try:
        part = await uploads.save_part(who, form.sink)
    except BaseException:
        await form.sink.abort()
        raise
    return JSON(objects.part_object(part))


async def complete_upload(request: Request) -> Response:
    who = await principal(request)
    req = CompleteUpload.from_json(await json_body(request))
    u, f = await ctx(request).uploads.complete(who, request.path_params["upload_id"], req)
    return JSON(objects.upload_object(u, clock.now(), f))


async def cancel_upload(request: Request) -> Response:
    who = await principal(request)
    u = await ctx(request).uploads.cancel(who, request.path_params["upload_id"])
    return JSON(objects.upload_object(u, clock.now()))


routes = [
    Route("/v1/uploads", create_upload, methods=["POST"]),
    Route("/v1/uploads/{upload_id}/parts", add_part, methods=["POST"]),
    Route("/v1/uploads/{upload_id}/complete", complete_upload, methods=["POST"]),
    Route("/v1/uploads/{upload_id}/cancel", cancel_upload, methods=["POST"]),
]
