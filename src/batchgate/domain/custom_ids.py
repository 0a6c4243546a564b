"""Exact custom_id uniqueness over millions of lines, in 16 bytes a line.

A set of 1,000,000 custom_id strings takes ~100 MB; this keeps each id's 64-bit hash and its line number in
arrays instead (16 MB). Two lines whose ids share a hash are only *suspects*: the caller reads those lines
again and `Repeats` compares the real strings, so two different ids are never reported as duplicates. Real
repeats are user errors (the batch fails anyway) and a 64-bit collision among a million ids has a chance of
about 1 in 37 million, so the second read is rare."""

from __future__ import annotations

from array import array
from collections.abc import Callable

_BUCKETS = 256  # arrays by the hash's low byte: finding shared hashes needs a set of one bucket at a time


class CustomIds:
    """Remembers (hash, line) of each accepted custom_id; `suspects()` lists the lines to compare."""

    def __init__(self, digest: Callable[[str], int] = hash) -> None:
        # Python's str hash: 64-bit SipHash, keyed per process (stable for as long as this object lives), and
        # cached on the string. Tests pass one that collides to prove that suspects are only suspects.
        self._digest = digest
        self._buckets = [array("q") for _ in range(_BUCKETS)]  # hash, line, hash, line, ...

    def add(self, line: int, custom_id: str) -> None:
        h = self._digest(custom_id)
        bucket = self._buckets[h & (_BUCKETS - 1)]
        bucket.append(h)
        bucket.append(line)

    def suspects(self) -> array[int]:
        """Line numbers, ascending, whose custom_id's hash is shared with another line's (usually none)."""
        found: list[int] = []
        for bucket in self._buckets:
            hashes = bucket[0::2]
            if len(set(hashes)) == len(hashes):
                continue
            seen: set[int] = set()
            shared: set[int] = set()
            for h in hashes:
                (shared if h in seen else seen).add(h)
            found.extend(line for h, line in zip(hashes, bucket[1::2], strict=True) if h in shared)
        return array("q", sorted(found))


class Repeats:
    """Feed it the suspects' custom_ids in line order: it keeps the lines that repeat an earlier line's id."""

    def __init__(self) -> None:
        self._first: dict[str, int] = {}
        self.seen = 0
        self.lines = array("q")

    def see(self, line: int, custom_id: str) -> None:
        self.seen += 1
        if self._first.setdefault(custom_id, line) != line:
            self.lines.append(line)
