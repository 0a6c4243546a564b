"""Splitting JSONL bytes into numbered lines with their byte offsets, streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import NamedTuple

BOM = b"\xef\xbb\xbf"


class Line(NamedTuple):  # a tuple, not a frozen dataclass: built 50,000 times per file, it must be cheap
    number: int  # 1-based line number in the file
    start: int  # byte offset of the first byte of the line
    end: int  # byte offset just past the line's newline (or end of file)
    data: bytes  # the line without its newline


async def stream_lines(blocks: AsyncIterator[bytes]) -> AsyncIterator[list[Line]]:
    """Yield the lines of a file as lists (one per block read), never holding more than a block and a line."""
    rest = b""
    offset = 0  # file offset of the first byte of `rest`
    number = 0
    async for block in blocks:
        parts = (rest + block).split(b"\n") if rest else block.split(b"\n")
        rest = parts.pop()
        out: list[Line] = []
        for data in parts:
            number += 1
            end = offset + len(data) + 1
            if number == 1 and data.startswith(BOM):
                data = data[len(BOM):]
            out.append(Line(number, offset, end, data))
            offset = end
        if out:
            yield out
    if rest:
        number += 1
        end = offset + len(rest)
        if number == 1 and rest.startswith(BOM):
            rest = rest[len(BOM):]
        yield [Line(number, offset, end, rest)]


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
