"""What the scheduler reads from the store each planning tick: one BatchLoad per batch that may run now."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchLoad:
    """One in_progress, not expiring batch as the scheduler sees it (read from the store each planning tick)."""

    batch_id: str
    project: str
    model: str | None
    seq: int  # creation order
    created_at: int
    expires_at: int
    total: int  # request_counts.total
    done: int  # completed + failed so far
    leased_chunks: int  # chunks not done whose lease is live (lease_until >= now), any owner
    open_chunks: int  # chunks not done, not leased, retry_at <= now (claimable now)
    weight: float  # the project's weight (1.0 when unset)
