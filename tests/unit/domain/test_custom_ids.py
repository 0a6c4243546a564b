"""custom_id uniqueness in 8 bytes a line: hashes only point at suspects; the strings decide."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from batchgate.domain.custom_ids import CustomIds, Repeats
from batchgate.domain.validation import LineValidator

CHAT = "/v1/chat/completions"


def repeats_of(ids: list[str], index: CustomIds) -> list[int]:
    index.add_many(ids)
    found = Repeats(index.suspects(), index.digest)
    for n, cid in enumerate(ids, 1):
        found.see(n, cid)
    assert found.pending == 0
    return list(found.lines)


def test_distinct_ids_are_never_duplicates_even_when_every_hash_collides() -> None:
    ids = ["a", "b", "a", "c", "b", "a", "d"]
    assert repeats_of(ids, CustomIds(lambda _: 42)) == [3, 5, 6]
    assert repeats_of(["a", "b", "c"], CustomIds(lambda _: 42)) == []


def test_without_collisions_only_real_repeats_are_suspects() -> None:
    ids = [f"request-{i}" for i in range(10_000)] + ["request-17", "request-9999"]
    index = CustomIds()
    index.add_many(ids)
    shared, ids_with_one = index.suspects()
    assert len(shared) == 2 and ids_with_one == 4
    assert CustomIds().suspects() == (set(), 0)
    assert repeats_of(ids, CustomIds()) == [10_001, 10_002]


def raw(cid: str) -> bytes:
    return orjson.dumps({"custom_id": cid, "method": "POST", "url": CHAT,
                         "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}})


def test_the_validator_compares_the_strings_on_a_second_read() -> None:
    raws = [raw("x"), raw("y"), b"", b"not json", raw("z"), raw("y")]
    v = LineValidator(CHAT, lambda m: None, custom_ids=CustomIds(lambda _: 0))
    assert [v.feed(n, r) for n, r in enumerate(raws, 1)] == [True, True, False, False, True, True]
    assert v.repeats_possible()
    numbered = [(n, 0, 0, r) for n, r in enumerate(raws, 1)]
    assert v.recheck(numbered[:3])  # needs more
    assert not v.recheck(numbered[3:])  # has seen every line with a suspect hash
    assert [(e.code, e.line) for e in v.finish(100)] == [("invalid_json_line", 4), ("duplicate_custom_id", 6)]


def test_finish_refuses_to_skip_the_second_read() -> None:
    v = LineValidator(CHAT, lambda m: None, custom_ids=CustomIds(lambda _: 0))
    v.feed(1, raw("x"))
    v.feed(2, raw("y"))
    with pytest.raises(RuntimeError):
        v.finish(100)  # it would report no duplicates without having compared the ids


def test_a_million_ids_would_take_about_8_mb() -> None:
    ids = [f"request-{i}" for i in range(100_000)]  # made before tracing: the batch's strings come and go
    tracemalloc.start()
    try:
        index = CustomIds()
        for start in range(0, len(ids), 4000):
            index.add_many(ids[start:start + 4000])
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 100_000 * 10  # a set of the strings themselves: ~100 bytes each
    assert index.suspects() == (set(), 0)
