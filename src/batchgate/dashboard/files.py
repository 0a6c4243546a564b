"""The files page and file downloads (streamed, with the session cookie's key)."""

from __future__ import annotations

import urllib.parse

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from batchgate.dashboard import session
from batchgate.dashboard.deps import services
from batchgate.dashboard.render import Renderer
from batchgate.domain.files import FILE_PURPOSES, OUTPUT_PURPOSE
from batchgate.errors import InvalidValue

SHOWN = 100
PURPOSES = (*FILE_PURPOSES, OUTPUT_PURPOSE)


class FilePages:
    def __init__(self, renderer: Renderer) -> None:
        self._r = renderer

    async def list(self, request: Request) -> Response:
        who = await session.principal(request)
        purpose = request.query_params.get("purpose") or None
        if purpose is not None and purpose not in PURPOSES:
            raise InvalidValue(f"Unknown purpose '{purpose}'. Use one of: {', '.join(PURPOSES)}.", param="purpose")
        after = request.query_params.get("after") or None
        page = await services(request).files.list(who, purpose, False, after, SHOWN)
        return self._r.page(request, "files.html", {
            "nav": "files", "files": page.items, "purpose": purpose, "purposes": PURPOSES,
            "next_after": page.items[-1].id if page.has_more and page.items else None,
        }, who=who)

    async def download(self, request: Request) -> Response:
        who = await session.principal(request)
        f, body = await services(request).files.content(who, request.path_params["file_id"])
        return StreamingResponse(body, media_type="application/octet-stream", headers={
            "content-length": str(f.bytes),
            "content-disposition": attachment(f.filename),
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
        })


def attachment(filename: str) -> str:
    """A Content-Disposition that survives any stored filename: an ASCII fallback plus RFC 5987's UTF-8 form."""
    fallback = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\;' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{urllib.parse.quote(filename)}"
