"""How often a failing task is tried again, and how a failure is named in logs and error files."""

from __future__ import annotations

from batchgate.errors import BatchgateError

# A validate or finalize task that keeps failing (e.g. the disk is full) fails its batch after this many tries
# in this process, instead of being retried at every lease expiry forever.
MAX_TASK_FAILURES = 3
# A chunk that fails (storage or database down, a bug) is retried after 1, 2, 4, 8 s (by any worker: the wait is
# in the chunk's row); its fifth failure fails the requests it has not run, so the batch can finish. (Before,
# it was released and claimed again at once: a batch whose input was deleted did so 9,152 times in 70 s.)
MAX_CHUNK_FAILURES = 5
CHUNK_RETRY_BASE_SECONDS = 1.0
CHUNK_RETRY_MAX_SECONDS = 30.0


def chunk_retry_delay(failures: int) -> float:
    return min(CHUNK_RETRY_MAX_SECONDS, CHUNK_RETRY_BASE_SECONDS * 2.0 ** (failures - 1))


def first(e: BaseException) -> BaseException:
    """The first error inside (nested) exception groups, such as a TaskGroup raises."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return e


def describe(e: BaseException) -> str:
    """What went wrong, in words fit for an error file: our own errors' messages, only the kind of the others."""
    e = first(e)
    return e.message if isinstance(e, BatchgateError) else type(e).__name__


def has(e: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(e, BaseExceptionGroup):
        return e.subgroup(kind) is not None
    return isinstance(e, kind)
