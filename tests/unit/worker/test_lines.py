"""Streaming a file into numbered lines with offsets: whatever the block size, the same lines as one split."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from batchgate.blobs.base import read_ahead
from batchgate.worker.lines import BOM, split_lines, stream_lines

DATA = BOM + b'{"a":1}\n\n  \r\n{"b":"' + b"x" * 40 + b'"}\r\nlast-without-newline'


async def blocks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[i:i + size]


async def collect(data: bytes, size: int, ahead: bool) -> list[tuple[int, int, int, bytes]]:
    src = blocks(data, size)
    out = []
    async for lines in stream_lines(read_ahead(src) if ahead else src):
        out += [(n, s, e, bytes(d)) for n, s, e, d in lines]
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 1 << 20])
@pytest.mark.parametrize("ahead", [False, True])
def test_stream_lines_matches_one_split(size: int, ahead: bool) -> None:
    want = [(x.number, x.start, x.end, x.data) for x in split_lines(DATA, 1)]
    assert asyncio.run(collect(DATA, size, ahead)) == want
    assert want[0][3] == b'{"a":1}' and want[0][1:3] == (0, len(BOM) + 8)  # the BOM is not part of line 1
    assert want[-1] == (5, len(DATA) - 20, len(DATA), b"last-without-newline")
    for _, start, end, data in want[1:]:
        assert DATA[start:end].rstrip(b"\n") == data


def test_read_ahead_closes_its_source_when_the_reader_stops() -> None:
    closed = []

    async def source() -> AsyncIterator[bytes]:
        try:
            for i in range(100):
                yield b"%d" % i
        finally:
            closed.append(True)

    async def go() -> list[bytes]:
        got = []
        async for b in read_ahead(source()):
            got.append(b)
            if len(got) == 3:
                break
        return got

    assert asyncio.run(go()) == [b"0", b"1", b"2"]
    assert closed == [True]
