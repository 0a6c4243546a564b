"""The Store protocols: everything batchgate persists, except file bytes (see blobs/).

One role protocol per kind of consumer (keys, project weights, files, uploads, batch reads, the work queue,
webhooks), the way pgqueuer splits its ports; each consumer declares the role(s) it uses. `Store` is all of them,
plus open/close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from batchgate.domain.batch import Batch, BatchError, ErrorCount, RequestCounts
from batchgate.domain.files import StoredFile, Upload, UploadPart, UploadStatus
from batchgate.domain.idempotency import IdempotencyRecord
from batchgate.domain.load import BatchLoad
from batchgate.domain.results_feed import FeedLine, ResultHead
from batchgate.domain.status import BatchStatus
from batchgate.domain.webhooks import DeliveryAttempt, DeliveryClaim, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from batchgate.domain.work import BatchTask, ChunkClaim, ChunkSpec, RequestResult, ResultGroup

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    project: str
    admin: bool
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class ChunkHeartbeat:
    """Answer to a heartbeat: which claims were lost, and which batches must stop dispatching."""

    lost: frozenset[tuple[str, int]]
    stop_batches: frozenset[str]  # cancelled, expiring or ended: abort their chunks
    pause_batches: frozenset[str] = frozenset()  # paused: their chunks drain (what was sent finishes, no more goes)


class KeyStore(Protocol):
    """API keys (services/auth.py)."""

    async def create_key(self, key_id: str, project: str, key_hash: str, admin: bool, now: int) -> None: ...
    async def find_key(self, key_hash: str) -> KeyInfo | None: ...
    async def has_keys(self) -> bool: ...
    async def list_keys(self) -> list[KeyInfo]: ...
    async def delete_key(self, key_id: str) -> bool: ...


class ProjectStore(Protocol):
    """Each project's weight in the fair share of every upstream (services/projects.py, the scheduler)."""

    async def set_project_weight(self, project: str, weight: float, now: int) -> None:
        """Set (or change) the project's weight."""
        ...
    async def project_weights(self) -> dict[str, float]:
        """The weight of every project that was given one (the others weigh domain.projects.DEFAULT_WEIGHT)."""
        ...


class FileStore(Protocol):
    """File records (services/files.py; the worker reads inputs and registers outputs)."""

    async def insert_file(self, f: StoredFile) -> None: ...
    async def get_file(self, file_id: str) -> StoredFile | None: ...
    async def list_files(
        self, project: str | None, purpose: str | None, ascending: bool, after: str | None, limit: int, now: int
    ) -> Page[StoredFile]:
        """One project's files (every project's when `project` is None: admin keys)."""
        ...
    async def delete_file(self, file_id: str) -> bool:
        """Hide a file from get_file and list_files at once. Its bytes stay: batches created before the delete
        read it to the end (input_file), and purgeable_files offers it once none of them is unfinished."""
        ...
    async def input_file(self, batch_id: str) -> StoredFile | None:
        """The batch's input file as the batch may read it: None when there is no such file, its bytes were
        purged, or it was deleted before the batch was created (then it is missing for this batch)."""
        ...
    async def purgeable_files(self, now: int, limit: int, file_id: str | None = None) -> list[str]:
        """Files whose bytes can go: deleted or expired, not purged yet, and the input of no unfinished batch
        (only `file_id` is considered when given)."""
        ...
    async def mark_purged(self, file_id: str) -> None:
        """The file's bytes are gone: it stays hidden for good (the row is kept for list cursors)."""
        ...


class UploadStore(Protocol):
    """Multipart uploads and their parts (services/uploads.py)."""

    async def insert_upload(self, u: Upload) -> None: ...
    async def get_upload(self, upload_id: str) -> Upload | None: ...
    async def insert_part(self, p: UploadPart) -> None: ...
    async def get_parts(self, upload_id: str) -> list[UploadPart]: ...
    async def set_upload_status(
        self, upload_id: str, status: UploadStatus, file_id: str | None = None
    ) -> bool: ...


class BatchReads(Protocol):
    """Reading batches and the results recorded for them (the API, and the worker's tasks)."""

    async def get_batch(self, batch_id: str) -> Batch | None: ...
    async def list_batches(
        self, project: str | None, after: str | None, limit: int, status: BatchStatus | None = None, *,
        endpoint: str | None = None, other_than: str | None = None, before: str | None = None,
    ) -> Page[Batch]:
        """Newest first: one project's (every project's when `project` is None), of `status` when given, only
        those of `endpoint` / none of `other_than` when given. Older than `after`; with `before` instead, the
        `limit` batches just newer than it (still newest first; `has_more`: there are newer ones still)."""
        ...
    async def count_batches_by_status(self, project: str | None = None) -> dict[BatchStatus, int]:
        """How many batches are in each status (every project's when `project` is None); absent: none."""
        ...
    async def enqueued_tokens(self, project: str, model: str) -> int:
        """Prompt tokens of the project's running batches for `model` (for the enqueued-token limit)."""
        ...
    async def chunk_specs(self, batch_id: str) -> list[ChunkSpec]: ...
    async def results_in(self, batch_id: str, first_line: int, last_line: int) -> list[tuple[int, bool, bytes]]: ...
    async def done_lines(self, batch_id: str, first_line: int, last_line: int) -> set[int]: ...
    async def recorded_lines(self, batch_id: str, ok: bool | None = None) -> set[int]:
        """The lines of the batch with a recorded result (only those that succeeded, or failed, when `ok` is
        given): what a retry of it selects from."""
        ...


class ResultFeedStore(Protocol):
    """Following a batch's results in recording order (services/results_feed.py; domain/results_feed.py)."""

    async def result_head(self, batch_id: str) -> ResultHead | None: ...
    async def results_after(self, batch_id: str, after: int, limit: int) -> list[FeedLine]:
        """The batch's results numbered above `after`, in recording order, at most `limit`."""
        ...


class IdempotencyStore(Protocol):
    """Idempotency-Key headers on creates, per project (services/idempotency.py)."""

    async def claim_idempotency_key(self, k: IdempotencyRecord, now: int, stale_before: int) -> IdempotencyRecord:
        """Store `k` unless its (project, key) is taken by a live claim (one not expired, and either created
        or claimed after `stale_before`); answer the record stored now: `k` itself when the claim is ours."""
        ...
    async def set_idempotency_object(self, project: str, key: str, owner: str, object_id: str) -> bool: ...
    async def release_idempotency_key(self, project: str, key: str, owner: str) -> None:
        """Give up our claim that created nothing (the create failed), so the key may be used again."""
        ...
    async def purge_idempotency_keys(self, now: int) -> int: ...


class BatchStore(BatchReads, Protocol):
    """The API side of batches: create, read, cancel (services/batches.py)."""

    async def insert_batch(self, b: Batch) -> None: ...
    async def request_cancel(self, batch_id: str, now: int) -> Batch | None: ...
    async def insert_retry(self, b: Batch) -> Batch:
        """Insert `b`, a retry of batch `b.retried_from` (for its `b.retry_only` lines), unless that batch already
        has such a retry: the retry stored, `b` or the earlier one."""
        ...
    async def pause_batch(self, batch_id: str, now: int) -> Batch | None:
        """Mark a validating or in_progress batch paused (one already paused keeps its paused_at); the batch as
        it is afterwards, None when there is no such batch."""
        ...
    async def resume_batch(self, batch_id: str) -> Batch | None:
        """Clear a validating or in_progress batch's pause; the batch as it is afterwards (None: no such batch)."""
        ...
    async def delete_batch(self, batch_id: str) -> bool:
        """Remove an ended batch with its chunks and recorded results (False: none such, or not ended)."""
        ...


class WorkQueue(BatchReads, Protocol):
    """The worker side of batches: claims, leases and results. Every write carries the fencing generation of the
    claim it belongs to."""

    async def mark_expiring(self, now: int) -> int: ...
    async def claim_batch_task(self, owner: str, now: float, lease: float) -> BatchTask | None: ...
    async def renew_batch(self, batch_id: str, generation: int, until: float) -> BatchStatus | None: ...
    async def start_batch(
        self, batch_id: str, generation: int, chunks: Sequence[ChunkSpec], model: str | None, now: int,
        prompt_tokens: int = 0,
    ) -> bool: ...
    async def fail_batch(
        self, batch_id: str, generation: int, errors: Sequence[BatchError], now: int
    ) -> bool: ...
    async def enter_finalizing(self, batch_id: str, generation: int, now: int) -> bool: ...
    async def finish_batch(
        self,
        batch_id: str,
        generation: int,
        status: BatchStatus,
        now: int,
        output_file_id: str | None,
        error_file_id: str | None,
        counts: RequestCounts,
        error_counts: Sequence[ErrorCount] = (),
    ) -> bool: ...

    async def renew_chunks(
        self, claims: Sequence[tuple[str, int, int]], until: float
    ) -> ChunkHeartbeat: ...
    async def record_results(
        self, batch_id: str, chunk: int, generation: int, results: Sequence[RequestResult]
    ) -> bool:
        """Store the results of lines not recorded yet and add them to the batch's counts (domain/tally.py)."""
        ...
    async def record_results_of(self, groups: Sequence[ResultGroup]) -> list[bool]:
        """`record_results` for several chunks, of one batch or many: the worker's group commit, in as few
        transactions as the backend does best (SQLite: one; PostgreSQL: one per batch, side by side). Whether each
        group was recorded, in order (False: its chunk's generation moved on, and nothing of that group was
        stored). On an error some groups may be stored and others not: sending them all again is safe."""
        ...
    async def complete_chunk(self, batch_id: str, chunk: int, generation: int, now: int) -> bool: ...
    async def release_chunk(self, batch_id: str, chunk: int, generation: int) -> None: ...
    async def chunk_failed(self, batch_id: str, chunk: int, generation: int, retry_at: float) -> bool:
        """Count a failed run of a claimed chunk (ChunkClaim.failures) and release it; no worker claims it
        again before `retry_at`."""
        ...
    async def drop_results(self, batch_id: str) -> None: ...
    async def record_final_lines(self, batch_id: str, generation: int, lines: Sequence[tuple[int, bytes]]) -> bool:
        """Record the error lines the finalizer writes for requests without a result (under the batch task's
        generation), so that followers get every line of the files; not counted (finish_batch sets the counts)."""
        ...
    async def keep_results(self, batch_id: str, until: int) -> None:
        """Keep the finished batch's results for followers until `until`, then drop_kept_results drops them."""
        ...
    async def drop_kept_results(self, now: int, limit: int) -> int:
        """Drop the results of up to `limit` finished batches kept until `now` or before; how many batches."""
        ...

    # scheduling (worker/planner.py): what may run, claims in the planner's order, the estimates it makes
    async def schedule_snapshot(self, now: float) -> list[BatchLoad]:
        """Every in_progress, not expiring batch, in creation order, with its chunks leased and open at `now` and
        its project's weight. One query: the planner asks every second."""
        ...
    async def claim_chunks_of(
        self, owner: str, now: float, lease: float, wants: Sequence[tuple[str, int]]
    ) -> list[ChunkClaim]:
        """For each (batch_id, n) in order, claim up to n claimable chunks of that batch, lowest index first (a
        live lease or a retry_at ahead keeps a chunk out; each claim bumps its generation). Batches no longer
        in_progress, or expiring, are skipped; a batch named twice is claimed from once, at its first place, for
        the sum of its counts. The claims come in `wants` order."""
        ...
    async def set_estimates(self, estimates: Sequence[tuple[str, int | None]]) -> None:
        """Set estimated_completion_at (unix seconds, or None) of those batches that are in_progress, in one
        transaction. PostgreSQL skips a batch row another transaction holds at that moment (recording results):
        an estimate is rewritten at the next planning tick, and waiting could only slow the planner down."""
        ...
    async def set_at_risk(self, marks: Sequence[tuple[str, int | None]]) -> None:
        """Mark batches at risk of missing their window (unix seconds when the planner found it) or take the mark
        off (None), in one transaction. Only a change is written: a batch already marked keeps its first time. A
        mark goes only on an in_progress batch; None takes one off whatever the status. PostgreSQL skips a row
        another transaction holds, as set_estimates does (the planner writes the marks again every few seconds)."""
        ...

    # leases held by processes that are gone
    async def lease_owners(self) -> set[str]: ...
    async def release_owner(self, owner: str) -> None: ...


class WebhookStore(Protocol):
    """Endpoints per project and their deliveries. finish_batch and fail_batch queue one delivery per matching
    endpoint in the transaction that enters the terminal status."""

    async def create_webhook(self, e: WebhookEndpoint) -> None: ...
    async def list_webhooks(self, project: str | None) -> list[WebhookEndpoint]:
        """One project's endpoints (every project's when `project` is None: admin keys)."""
        ...
    async def delete_webhook(self, webhook_id: str, project: str | None) -> bool:
        """Delete an endpoint (of `project`, unless None) and discard its deliveries not yet acknowledged."""
        ...
    async def claim_deliveries(self, owner: str, now: float, lease: float, limit: int) -> list[DeliveryClaim]: ...
    async def record_attempt(
        self, delivery_id: str, generation: int, attempt: DeliveryAttempt | None, status: DeliveryStatus,
        next_attempt_at: float | None,
    ) -> bool:
        """Record one attempt (None: none was made) and the delivery's new status, if the claim is still ours."""
        ...
    async def deliveries_for_batch(self, batch_id: str) -> list[WebhookDelivery]: ...


# Consumers that span two roles.
class UploadFiles(UploadStore, FileStore, Protocol):
    """Uploads, and the file a completed upload became (services/uploads.py)."""


class TaskStore(WorkQueue, FileStore, Protocol):
    """The worker's batch tasks: the work queue, and the files they read (input) and register (output)."""


class WorkerStore(TaskStore, WebhookStore, ProjectStore, IdempotencyStore, Protocol):
    """The whole worker: its tasks, the webhook deliveries it sends, and the project weights it schedules by."""


class Store(
    KeyStore, ProjectStore, FileStore, UploadStore, BatchStore, WorkQueue, WebhookStore, ResultFeedStore,
    IdempotencyStore, Protocol,
):
    """Every role at once: what the factory makes and the process opens and closes."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
