"""Units of work a worker claims: a batch-level task or a chunk of a batch's requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from batchgate.domain.batch import Batch, Usage


class TaskKind(StrEnum):
    VALIDATE = "validate"  # check the input file, cut it into chunks
    FINALIZE = "finalize"  # write output and error files, enter the terminal status


@dataclass(frozen=True, slots=True)
class BatchTask:
    kind: TaskKind
    batch: Batch
    generation: int  # fencing token: writes carry it and are refused once another worker took over
    expiring: bool = False  # the completion window ran out: finalize as `expired`


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """A contiguous range of input lines, cut at validation. Byte offsets point into the input file."""

    index: int
    first_line: int
    last_line: int
    byte_start: int
    byte_end: int
    requests: int


@dataclass(frozen=True, slots=True)
class ChunkClaim:
    batch_id: str
    endpoint: str
    input_file_id: str
    spec: ChunkSpec
    generation: int
    failures: int = 0  # earlier runs of this chunk that failed (it is retried with backoff, then failed)


@dataclass(frozen=True, slots=True)
class RequestResult:
    """One finished request: its output or error line, ready to be written to a file."""

    line: int
    ok: bool
    data: bytes  # the whole JSONL line (without newline)
    usage: Usage
    retries: int = 0


@dataclass(frozen=True, slots=True)
class ResultGroup:
    """The results of one claimed chunk to record, under its claim's generation: refused as a whole once another
    worker took the chunk over."""

    batch_id: str
    chunk: int
    generation: int
    results: Sequence[RequestResult]
