"""Following a batch's results while it runs (docs/extensions.md, "Results while a batch runs").

Every recorded result gets the next number of its batch's recording sequence (`batches.recorded`), given out
under the batch row's lock in the transaction that records it; so, per batch, numbers become visible in the
order they were given (a later transaction waits for the earlier one's commit), and a follower that read the
head `recorded = R` and then every line numbered up to R has seen every line up to R, gaps included (PostgreSQL
gives a number to a duplicate result too, which is then not stored). The cursor is that number.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchgate.domain.status import BatchStatus

# A finished batch's results stay this long for followers to read the end; then only the files have them.
RESULTS_KEPT_SECONDS = 3600
FEED_LIMIT_DEFAULT = 1000
FEED_LIMIT_MAX = 10_000
FEED_WAIT_MAX = 60.0


@dataclass(frozen=True, slots=True)
class ResultHead:
    """What a follower needs of the batch row: whose it is, where it stands, how far its recording went."""

    batch_id: str
    project: str
    status: BatchStatus
    recorded: int
    dropped: bool
    output_file_id: str | None
    error_file_id: str | None


@dataclass(frozen=True, slots=True)
class FeedLine:
    """One recorded result: its recording number, which file it goes to (True: output), its line as in that file."""

    seq: int
    ok: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One answer to a follower: the lines after its cursor, the cursor to pass next, and whether it is over."""

    head: ResultHead
    lines: list[FeedLine]
    cursor: int
    has_more: bool

    @property
    def done(self) -> bool:
        """Every line of the batch has been handed out: it is finished and nothing follows the cursor."""
        return self.head.status.terminal and not self.has_more and not self.lines


def next_cursor(head: ResultHead, after: int, lines: list[FeedLine], limit: int) -> tuple[int, bool]:
    """The cursor after `lines` (read after `head`), and whether more may be waiting. A page that is not full saw
    every line numbered up to head.recorded (see the module docstring), so the cursor jumps over the gaps."""
    if len(lines) >= limit:
        return lines[-1].seq, True
    last = lines[-1].seq if lines else after
    return max(last, head.recorded, after), False
