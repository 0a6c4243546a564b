"""Streaming multipart/form-data: small fields are collected, the one file part is handed on chunk by chunk,
so an upload of any size is never held in memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from batchgate.errors import InvalidRequest, PayloadTooLarge

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 32


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    file_field: str | None = None
    filename: str | None = None
    sink: Any = None


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)
    is_file: bool = False


async def read_form(request: Request, file_field: str, open_sink: Callable[[], Awaitable[Any]]) -> Form:
    """Parse the request body. The part named `file_field` (with a filename or not) streams into the sink
    returned by `open_sink()`; any other part must be a small text field."""
    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise InvalidRequest("The request must be multipart/form-data.", code="invalid_content_type")
    boundary = opts.get(b"boundary")
    if not boundary:
        raise InvalidRequest("The multipart body has no boundary.", code="invalid_multipart")

    form = Form()
    events: list[tuple[str, Any]] = []
    part = _Part()
    header_name = bytearray()
    header_value = bytearray()
    parts = 0
    ended = False

    def on_part_begin() -> None:
        nonlocal part, parts
        parts += 1
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part.headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            part.filename = options[b"filename"].decode("utf-8", "replace")
        part.is_file = part.name == file_field
        if part.is_file:
            events.append(("file_start", part))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.is_file:
            events.append(("file_data", bytes(data[start:end])))
        else:
            part.data.extend(data[start:end])
            if len(part.data) > MAX_FIELD_BYTES:
                raise PayloadTooLarge(
                    f"The form field '{part.name[:64]}' is larger than {MAX_FIELD_BYTES} bytes.", param=part.name[:64]
                )

    def on_part_end() -> None:
        if not part.is_file:
            events.append(("field", part))

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_end": on_end,
    })

    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except FormParserError as e:
                raise InvalidRequest(f"The multipart body is malformed: {e}.", code="invalid_multipart") from None
            if parts > MAX_PARTS:
                raise InvalidRequest(f"The multipart body has more than {MAX_PARTS} parts.", code="invalid_multipart")
            await _apply(events, form, open_sink, file_field)
        if not ended:
            raise InvalidRequest(
                "The multipart body ended before its closing boundary.", code="invalid_multipart"
            )
    except ClientDisconnect:
        if form.sink is not None:
            await form.sink.abort()
        raise
    except BaseException:
        if form.sink is not None:
            await form.sink.abort()
        raise
    return form


async def _apply(
    events: list[tuple[str, Any]], form: Form, open_sink: Callable[[], Awaitable[Any]], file_field: str
) -> None:
    for kind, value in events:
        if kind == "file_start":
            if form.sink is not None:
                raise InvalidRequest(f"Only one '{file_field}' part is allowed.", param=file_field,
                                     code="invalid_multipart")
            form.file_field = value.name
            form.filename = value.filename
            form.sink = await open_sink()
        elif kind == "file_data":
            await form.sink.write(value)
        elif kind == "field":
            try:
                form.fields[value.name] = bytes(value.data).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest(f"The form field '{value.name[:64]}' is not valid UTF-8.",
                                     param=value.name[:64]) from None
    events.clear()
