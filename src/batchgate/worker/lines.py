"""Splitting JSONL bytes into numbered lines with their byte offsets, streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based line number in the file
    start: int  # byte offset of the first byte of the line
    end: int  # byte offset just past the line's newline (or end of file)
    data: bytes  # the line without its newline


async def stream_lines(blocks: AsyncIterator[bytes]) -> AsyncIterator[list[Line]]:
    """Yield the lines of a file as lists (one per block read), never holding more than a block and a line."""
    pending = bytearray()
    pending_start = 0
    number = 0
    async for block in blocks:
        pending += block
        out: list[Line] = []
        pos = 0
        while True:
            nl = pending.find(b"\n", pos)
            if nl < 0:
                break
            number += 1
            data = bytes(pending[pos:nl])
            if number == 1 and data.startswith(BOM):
                data = data[len(BOM):]
            out.append(Line(number, pending_start + pos, pending_start + nl + 1, data))
            pos = nl + 1
        del pending[:pos]
        pending_start += pos
        if out:
            yield out
    if pending:
        number += 1
        data = bytes(pending)
        if number == 1 and data.startswith(BOM):
            data = data[len(BOM):]
        yield [Line(number, pending_start, pending_start + len(pending), data)]


def split_lines(raw: bytes, first_number: int, base_offset: int = 0) -> Iterator[Line]:
    """The lines of an in-memory byte range that starts at line `first_number`."""
    pos = 0
    number = first_number
    n = len(raw)
    while pos < n:
        nl = raw.find(b"\n", pos)
        end = n if nl < 0 else nl
        data = raw[pos:end]
        if number == 1 and data.startswith(BOM):
            data = data[len(BOM):]
        yield Line(number, base_offset + pos, base_offset + (n if nl < 0 else nl + 1), data)
        number += 1
        pos = end + 1
