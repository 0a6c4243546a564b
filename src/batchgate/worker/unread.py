"""Requests whose input line cannot be read, because the input file's bytes are gone (an operator removed the
blob from disk or S3): they fail, once each, with custom_id null.

Every other request keeps its custom_id: a result carries it, so neither the chunk runner (which skips
recorded lines) nor the finalizer (which writes recorded results as they are) needs the input for it. A line
that never ran has its custom_id only in the input; keeping a copy of every custom_id at validation would
cost every batch a write as large as its list of ids, to cover bytes lost behind batchgate's back. Instead
the error line names the input line, so the user can find the request in their own copy of the file.
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import islice

from batchgate.domain.work import ChunkSpec, RequestResult
from batchgate.worker.outcome import error_result


def unread_lines(spec: ChunkSpec, recorded: Collection[int]) -> tuple[list[int], bool]:
    """Line numbers for the chunk's requests that have no result, and whether they are exact. A chunk's range
    may hold blank lines (not requests); without the input nobody knows which, so then the numbers are the
    first free ones of the range, one per missing request, and only the range is exact."""
    missing = spec.requests - len(recorded)
    free = (n for n in range(spec.first_line, spec.last_line + 1) if n not in recorded)
    return list(islice(free, max(0, missing))), spec.last_line - spec.first_line + 1 == spec.requests


def unread_result(
    line: int, spec: ChunkSpec, exact: bool, file_id: str, code: str, message: str
) -> RequestResult:
    where = f"line {line}" if exact else f"one of lines {spec.first_line}-{spec.last_line}"
    return error_result(line, None, code, f"{message} Its custom_id is unknown: {where} of input file {file_id} "
                                          "could not be read.")
