"""Counting recorded request results into a batch's request counts and usage (both adapters add the same)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from batchgate.domain.batch import Usage
from batchgate.domain.work import RequestResult


@dataclass(frozen=True, slots=True)
class Tally:
    """What a run of results adds to its batch: completed and failed requests, tokens, retries."""

    completed: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)
    retries: int = 0


def tally(results: Iterable[RequestResult], new_lines: Iterable[int]) -> Tally:
    """Count the results whose line was newly recorded (`new_lines`), each line once: the first result given for
    it. A line recorded by an earlier claim is never counted twice."""
    new = set(new_lines)
    completed = failed = retries = inp = cached = out = reasoning = total = 0
    for res in results:  # plain ints, not Usage.__add__: this runs for every recorded request
        if res.line not in new:
            continue
        new.discard(res.line)
        if res.ok:
            completed += 1
        else:
            failed += 1
        u = res.usage
        inp, cached, out = inp + u.input_tokens, cached + u.cached_tokens, out + u.output_tokens
        reasoning, total = reasoning + u.reasoning_tokens, total + u.total_tokens
        retries += res.retries
    return Tally(completed, failed, Usage(inp, cached, out, reasoning, total), retries)
