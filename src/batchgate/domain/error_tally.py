"""Counting a batch's failed requests by error code, keeping one message of each (what the dashboard shows)."""

from __future__ import annotations

from batchgate.domain.batch import ErrorCount

MAX_CODES = 20  # distinct codes kept; an upstream that invents a code per request must not grow a row without end
MAX_CODE_CHARS = 64
MAX_EXAMPLE_CHARS = 300
OTHER = "other"  # where the codes past MAX_CODES are counted


class ErrorTally:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._examples: dict[str, str] = {}

    def add(self, code: str, message: str) -> None:
        code = code[:MAX_CODE_CHARS]
        if code not in self._counts and len(self._counts) >= MAX_CODES:
            code = OTHER
        if code in self._counts:
            self._counts[code] += 1
        else:
            self._counts[code] = 1
            self._examples[code] = _shorten(message)

    def counts(self) -> tuple[ErrorCount, ...]:
        """Every code with its count and first message, the most frequent first."""
        ranked = sorted(self._counts.items(), key=lambda item: (-item[1], item[0]))
        return tuple(ErrorCount(code, n, self._examples[code]) for code, n in ranked)


def _shorten(message: str) -> str:
    return message if len(message) <= MAX_EXAMPLE_CHARS else message[:MAX_EXAMPLE_CHARS - 1] + "…"
