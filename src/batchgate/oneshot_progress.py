"""What `batchgate run` shows while its batch runs: a live bar on a terminal; plain lines every few seconds
otherwise (nohup, SLURM, docker logs), where a bar is either nothing at all until the end or a screenful of
control characters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from batchgate.domain.batch import Batch
from batchgate.domain.status import BatchStatus


class ProgressView(Protocol):
    def show(self, batch: Batch, retries: int) -> None: ...

    def stop(self) -> None:
        """Leave the terminal as it was (a process about to exit at once)."""


@contextmanager
def progress_view(console: Console, interval: float) -> Iterator[ProgressView]:
    """`interval`: seconds between plain lines (a bar redraws by itself)."""
    if console.is_terminal and not console.is_dumb_terminal:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[failed]} failed, {task.fields[retries]} retries"),
                      TimeElapsedColumn(), console=console) as progress:
            yield _Bar(progress)
    else:
        yield _Lines(console, interval)


class _Bar:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("validating", total=None, failed=0, retries=0)

    def show(self, batch: Batch, retries: int) -> None:
        c = batch.request_counts
        self._progress.update(self._task, description=batch.status.value, total=c.total or None,
                              completed=c.completed + c.failed, failed=c.failed, retries=retries)

    def stop(self) -> None:
        self._progress.stop()


class _Lines:
    """`in_progress: 1200/3000 done, 3 failed, 12 retries, 410 req/s`: at each change of status and every
    `interval` seconds in between; req/s counts the lines finished since the previous line."""

    def __init__(self, console: Console, interval: float) -> None:
        self._console = console
        self._interval = interval
        self._status = ""
        self._last = (time.monotonic(), -1)

    def show(self, batch: Batch, retries: int) -> None:
        now = time.monotonic()
        c = batch.request_counts
        done = c.completed + c.failed
        since, done_before = self._last
        if batch.status.value == self._status and now - since < self._interval:
            return
        rate = (done - done_before) / (now - since) if done_before >= 0 and now > since else 0.0
        self._status = batch.status.value
        self._last = (now, done)
        if batch.status is BatchStatus.VALIDATING:
            self._console.print("validating")
            return
        self._console.print(f"{batch.status.value}: {done}/{c.total} done, {c.failed} failed, {retries} retries, "
                            f"{rate:.0f} req/s")

    def stop(self) -> None:
        return None
