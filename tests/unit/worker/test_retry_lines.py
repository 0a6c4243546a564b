"""A retry's chunks hold only the picked lines: a chunk never spans a request line that is not picked, so running
every line of each chunk's byte range runs exactly the picked ones."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from batchgate.domain.validation import LineValidator
from batchgate.worker.lines import LineView, split_lines
from batchgate.worker.retry_lines import feed_picked
from batchgate.worker.validate import ChunkCutter


def request(i: int) -> bytes:
    return json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": "m", "messages": [{"role": "user", "content": "x" * (i % 7)}]}}).encode()


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=50), st.integers(1, 5),
       st.integers(1, 4))
def test_chunks_cover_exactly_the_picked_lines(shape: list[tuple[bool, bool]], size: int, blocks: int) -> None:
    """`shape`: per line, (picked, blank); blank lines are never requests. The file is fed in `blocks` pieces."""
    raw = b"".join((b"  " if blank else request(i)) + b"\n" for i, (_, blank) in enumerate(shape))
    picked = {f"c{i}" for i, (pick, blank) in enumerate(shape) if pick and not blank}
    lines: list[LineView] = [(n, start, end, data) for n, start, end, data in split_lines(raw, 1)]
    validator = LineValidator("/v1/chat/completions", lambda model: None, 10)
    cutter = ChunkCutter(size)

    def keep(line: LineView) -> bool:
        data = bytes(line[3])
        return bool(data.strip()) and json.loads(data)["custom_id"] in picked

    step = max(1, len(lines) // blocks)
    for k in range(0, len(lines), step):
        feed_picked(validator, cutter, lines[k:k + step], keep)
    chunks = cutter.finish()
    ran = []
    for c in chunks:
        inside = [json.loads(x.data)["custom_id"] for x in split_lines(raw[c.byte_start:c.byte_end], c.first_line)
                  if x.data.strip()]
        assert len(inside) == c.requests <= size
        ran += inside
    assert sorted(ran) == sorted(picked) and len(ran) == len(set(ran))
    assert validator.requests == len(picked)
