"""custom_id uniqueness in 16 bytes a line: hashes only point at suspects; the strings decide."""

from __future__ import annotations

import tracemalloc

import orjson

from batchgate.domain.custom_ids import CustomIds, Repeats
from batchgate.domain.validation import LineValidator

CHAT = "/v1/chat/completions"


def repeats_of(ids: list[str], ids_index: CustomIds) -> list[int]:
    for n, cid in enumerate(ids, 1):
        ids_index.add(n, cid)
    found = Repeats()
    for n in ids_index.suspects():
        found.see(n, ids[n - 1])
    return list(found.lines)


def test_distinct_ids_are_never_duplicates_even_when_every_hash_collides() -> None:
    ids = ["a", "b", "a", "c", "b", "a", "d"]
    assert repeats_of(ids, CustomIds(lambda _: 42)) == [3, 5, 6]
    assert repeats_of(["a", "b", "c"], CustomIds(lambda _: 42)) == []


def test_without_collisions_only_real_repeats_are_suspects() -> None:
    ids = [f"request-{i}" for i in range(10_000)] + ["request-17", "request-9999"]
    index = CustomIds()
    for n, cid in enumerate(ids, 1):
        index.add(n, cid)
    assert list(index.suspects()) == [18, 10_000, 10_001, 10_002]
    assert repeats_of(ids, CustomIds()) == [10_001, 10_002]


def test_the_validator_confirms_suspects_against_the_lines() -> None:
    def raw(cid: str) -> bytes:
        return orjson.dumps({"custom_id": cid, "method": "POST", "url": CHAT,
                             "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}})

    raws = [raw(c) for c in ("x", "y", "z", "y")]
    v = LineValidator(CHAT, lambda m: None, custom_ids=CustomIds(lambda _: 0))
    assert all(v.feed(n, r) for n, r in enumerate(raws, 1))
    assert list(v.suspects()) == [1, 2, 3, 4]
    for n in v.suspects():
        v.confirm(n, raws[n - 1])
    assert [(e.code, e.line) for e in v.finish(100)] == [("duplicate_custom_id", 4)]


def test_a_million_ids_would_take_about_16_mb() -> None:
    ids = [f"request-{i}" for i in range(100_000)]  # made before tracing: the batch's strings come and go
    tracemalloc.start()
    try:
        index = CustomIds()
        for n, cid in enumerate(ids, 1):
            index.add(n, cid)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 100_000 * 20  # a set of the strings themselves: ~100 bytes each
    assert len(index.suspects()) == 0
