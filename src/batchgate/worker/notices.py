"""Logging a failure that repeats once, not at every repeat.

A chunk whose input is gone, or whose storage is down, fails again at every retry and on every chunk of its
batch; one line per batch and kind of failure says so (with its traceback, when the failure is unexpected),
and the repeats go to DEBUG. (Before, a batch whose input was deleted logged 9,152 tracebacks in 70 s.)
"""

from __future__ import annotations

import logging
from collections import OrderedDict

SEEN_LIMIT = 10_000  # (batch, kind) pairs remembered; the oldest are forgotten first


class Notices:
    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def log(
        self, level: int, batch_id: str, kind: str, msg: str, *args: object, exc_info: BaseException | None = None
    ) -> None:
        """Log at `level` the first time `kind` happens to `batch_id`, at DEBUG after that."""
        key = (batch_id, kind)
        if key in self._seen:
            self._log.debug(msg, *args)
            return
        self._seen[key] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        self._log.log(level, msg, *args, exc_info=exc_info)
