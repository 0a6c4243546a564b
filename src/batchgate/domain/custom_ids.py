"""Exact custom_id uniqueness over millions of lines, in 8 bytes a line.

A set of 1,000,000 custom_id strings takes ~100 MB; this keeps each id's 64-bit hash in arrays instead
(8 MB). A hash seen twice is only a *suspect*: the caller reads the file again and `Repeats` compares the
real strings of the lines whose ids have a suspect hash, so two different ids are never reported as
duplicates. Real repeats are user errors (the batch fails anyway), and a 64-bit collision among a million
ids has a chance of about 1 in 37 million, so the second read is rare."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable

Digest = Callable[[str], int]


class CustomIds:
    """The hash of every accepted custom_id, in 256 arrays by the hash's low byte: `suspects()` then needs a
    set of one array at a time, not of every id."""

    def __init__(self, digest: Digest = hash) -> None:
        # Python's str hash: 64-bit SipHash, keyed per process (stable for as long as this object lives), and
        # cached on the string. Tests pass one that collides to prove that suspects are only suspects.
        self.digest = digest
        self._buckets = [array("q") for _ in range(256)]

    def add_many(self, custom_ids: Iterable[str]) -> None:
        """Once per block of lines: a call per line would cost as much as the rest of keeping them."""
        buckets = self._buckets
        for h in map(self.digest, custom_ids):
            buckets[h & 255].append(h)

    def suspects(self) -> tuple[set[int], int]:
        """The hashes seen more than once (usually none), and how many ids have one of them."""
        shared: set[int] = set()
        ids = 0
        for bucket in self._buckets:
            if len(set(bucket)) < len(bucket):
                counts = Counter(bucket)
                for h, n in counts.items():
                    if n > 1:
                        shared.add(h)
                        ids += n
        return shared, ids


class Repeats:
    """Shown every accepted line's custom_id again, in line order, it compares the real strings of those whose
    hash is a suspect, and keeps the lines that repeat an earlier line's id."""

    def __init__(self, suspects: tuple[set[int], int], digest: Digest) -> None:
        self._suspects, self.pending = suspects  # pending: 0 once every line with a suspect hash was seen
        self._digest = digest
        self._seen: set[str] = set()
        self.lines = array("q")

    def see(self, line: int, custom_id: str) -> None:
        if self._digest(custom_id) not in self._suspects:
            return
        self.pending -= 1
        if custom_id in self._seen:
            self.lines.append(line)
        else:
            self._seen.add(custom_id)
