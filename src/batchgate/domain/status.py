"""The batch state machine: one enum, one transition table, used everywhere."""

from __future__ import annotations

from enum import StrEnum


class BatchStatus(StrEnum):
    VALIDATING = "validating"  # input file being checked; nothing executed yet
    FAILED = "failed"  # input invalid (or a system failure); terminal
    IN_PROGRESS = "in_progress"  # requests being dispatched to upstreams
    FINALIZING = "finalizing"  # every request finished; output and error files being written
    COMPLETED = "completed"  # files written; terminal
    EXPIRED = "expired"  # completion window ran out; finished results kept; terminal
    CANCELLING = "cancelling"  # cancel requested; in-flight requests being aborted, files being written
    CANCELLED = "cancelled"  # cancel finished; finished results kept; terminal

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def timestamp_field(self) -> str | None:
        """Name of the Batch field set when a batch enters this status."""
        return None if self is BatchStatus.VALIDATING else f"{self.value}_at"


TERMINAL = frozenset({BatchStatus.FAILED, BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED})

TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    BatchStatus.VALIDATING: frozenset({BatchStatus.IN_PROGRESS, BatchStatus.FAILED, BatchStatus.CANCELLING}),
    BatchStatus.IN_PROGRESS: frozenset(
        {BatchStatus.FINALIZING, BatchStatus.CANCELLING, BatchStatus.EXPIRED, BatchStatus.FAILED}
    ),
    BatchStatus.FINALIZING: frozenset(
        {BatchStatus.COMPLETED, BatchStatus.CANCELLING, BatchStatus.EXPIRED, BatchStatus.FAILED}
    ),
    BatchStatus.CANCELLING: frozenset({BatchStatus.CANCELLED, BatchStatus.FAILED}),
    BatchStatus.FAILED: frozenset(),
    BatchStatus.COMPLETED: frozenset(),
    BatchStatus.EXPIRED: frozenset(),
    BatchStatus.CANCELLED: frozenset(),
}

# States in which a batch can be paused and resumed (a pause is a flag beside the status, not a status: the batch
# stays `in_progress` for the OpenAI SDK). Once it finalizes, cancels or expires, a pause means nothing.
PAUSABLE = frozenset({BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS})

# States a cancel request may move to `cancelling`.
CANCELLABLE = frozenset({BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING})


def can_transition(src: BatchStatus, dst: BatchStatus) -> bool:
    return dst in TRANSITIONS[src]


def sources_of(dst: BatchStatus) -> frozenset[BatchStatus]:
    """Every status from which `dst` may be entered (used to guard conditional UPDATEs)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if dst in targets)
