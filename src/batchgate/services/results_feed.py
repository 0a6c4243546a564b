"""Following a batch's results while it runs: the lines recorded after a cursor, waiting for them when asked.

Followers of one batch share its head: however many wait on it, this process reads the batch row at most once
every POLL_SECONDS (results are flushed about every 0.1 s); and they share its pages: followers that wake together
at the same cursor (the usual case: they all read up to the head) get one read of the lines. So 50 followers cost
the database about what one does. The store is polled rather than told: the worker that records may be another
thread or another machine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from batchgate.domain.results_feed import FeedLine, FeedPage, ResultHead, next_cursor
from batchgate.errors import Gone, NotFound
from batchgate.services.auth import Principal
from batchgate.store.base import ResultFeedStore

POLL_SECONDS = 0.1
_FORGET_AFTER = 30.0  # a batch nobody asked about for this long leaves the shared heads
_SHARED_MAX = 256
_PAGES_KEPT = 4
_PAGE_BYTES_KEPT = 4 << 20  # a bigger page is not kept: memory stays bounded per followed batch


@dataclass
class _Shared:
    head: ResultHead
    at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # (after, limit) -> (head.recorded the lines were read after, the lines); the latest few only
    pages: dict[tuple[int, int], tuple[int, list[FeedLine]]] = field(default_factory=dict)
    page_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ResultFeed:
    def __init__(self, store: ResultFeedStore, poll: float = POLL_SECONDS) -> None:
        self._store = store
        self._poll = poll
        self._shared: dict[str, _Shared] = {}

    async def read(self, who: Principal, batch_id: str, after: int, limit: int, wait: float = 0.0) -> FeedPage:
        """The lines recorded after `after`, at most `limit`; with `wait`, wait up to that many seconds for the
        first of them (the answer comes as soon as there is one, or the batch ends)."""
        head = await self._head(batch_id)  # at most POLL_SECONDS old
        if head.project != who.project and not who.admin:
            raise NotFound(f"No batch found with id '{batch_id}'.", param="id")
        deadline = time.monotonic() + wait
        while True:
            if head.dropped:
                raise Gone(
                    f"The results of batch '{batch_id}' are no longer kept: read its output and error files.",
                    code="results_dropped",
                )
            if head.recorded > after:
                lines = await self._lines(head, after, limit)
                cursor, more = next_cursor(head, after, lines, limit)
                if lines or head.status.terminal or time.monotonic() >= deadline:
                    return FeedPage(head, lines, cursor, more)
                after = cursor  # only numbers given to duplicates, never stored
            elif head.status.terminal or time.monotonic() >= deadline:
                return FeedPage(head, [], after, False)
            await asyncio.sleep(min(self._poll, max(0.0, deadline - time.monotonic())))
            head = await self._head(batch_id)

    async def _lines(self, head: ResultHead, after: int, limit: int) -> list[FeedLine]:
        """The lines after `after`, read after `head` or a newer head: a page another follower just read will do
        (every line up to its head's `recorded` was visible to it, see domain/results_feed.py)."""
        shared = self._share(head)
        key = (after, limit)
        async with shared.page_lock:
            hit = shared.pages.get(key)
            if hit is not None and hit[0] >= head.recorded:
                return hit[1]
            lines = await self._store.results_after(head.batch_id, after, limit)
            shared.pages.pop(key, None)
            if sum(len(line.data) for line in lines) <= _PAGE_BYTES_KEPT:
                shared.pages[key] = (head.recorded, lines)
            while len(shared.pages) > _PAGES_KEPT:
                del shared.pages[next(iter(shared.pages))]
            return lines

    async def _head(self, batch_id: str) -> ResultHead:
        """The batch's head, read at most once per poll interval for all its followers together."""
        shared = self._shared.get(batch_id)
        if shared is None:
            head = await self._store.result_head(batch_id)
            if head is None:
                raise NotFound(f"No batch found with id '{batch_id}'.", param="id")
            return self._share(head).head
        async with shared.lock:
            if time.monotonic() - shared.at >= self._poll:
                head = await self._store.result_head(batch_id)
                if head is None:
                    raise NotFound(f"No batch found with id '{batch_id}'.", param="id")
                shared.head, shared.at = head, time.monotonic()
            return shared.head

    def _share(self, head: ResultHead) -> _Shared:
        now = time.monotonic()
        shared = self._shared.get(head.batch_id)
        if shared is None:
            if len(self._shared) >= _SHARED_MAX:
                for old in [k for k, s in self._shared.items() if now - s.at > _FORGET_AFTER]:
                    del self._shared[old]
            shared = self._shared[head.batch_id] = _Shared(head, now)
        elif head.recorded >= shared.head.recorded:
            shared.head, shared.at = head, now
        return shared
