"""Cutting validated lines into chunks a run of lines at a time gives the chunks a line at a time would."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from batchgate.domain.work import ChunkSpec
from batchgate.worker.lines import LineView
from batchgate.worker.validate import ChunkCutter


def one_at_a_time(lines: list[LineView], size: int, max_bytes: int) -> list[ChunkSpec]:
    """The rule, a line at a time: a chunk takes a line while it has fewer than `size` lines and the line ends
    within `max_bytes` of the chunk's start; a line that doesn't fit starts the next chunk."""
    chunks: list[ChunkSpec] = []
    current: list[LineView] = []
    for line in lines:
        if current and (len(current) >= size or line[2] - current[0][1] > max_bytes):
            chunks.append(ChunkSpec(len(chunks), current[0][0], current[-1][0], current[0][1], current[-1][2],
                                    len(current)))
            current = []
        current.append(line)
    if current:
        chunks.append(ChunkSpec(len(chunks), current[0][0], current[-1][0], current[0][1], current[-1][2],
                                len(current)))
    return chunks


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.booleans()), max_size=60), st.integers(1, 6),
       st.integers(1, 100), st.lists(st.integers(0, 60), max_size=4))
def test_runs_of_lines_cut_like_single_lines(
    shape: list[tuple[int, bool]], size: int, max_bytes: int, cuts: list[int]
) -> None:
    lines: list[LineView] = []
    offset = 0
    for number, (length, request) in enumerate(shape, 1):
        if request:  # lines that are not requests (blank, say) are not given to the cutter, only skipped
            lines.append((number, offset, offset + length, b""))
        offset += length
    cutter = ChunkCutter(size, max_bytes)
    bounds = [0, *sorted(min(c, len(lines)) for c in cuts), len(lines)]
    for lo, hi in itertools.pairwise(bounds):
        cutter.add_lines(lines[lo:hi])
    assert cutter.finish() == one_at_a_time(lines, size, max_bytes)
