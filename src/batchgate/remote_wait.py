"""Following a batch to its end from the terminal (`batches submit --wait`): a progress bar on a terminal, plain
lines elsewhere (nohup, CI, docker logs), where a bar's carriage returns would pile up into one endless line."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import click

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import Batch

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
# Not a terminal: a line at every status change, and for moving counts at most one line this often, so that a
# long batch writes a few hundred lines to a log, not one per poll.
QUIET_SECONDS = 10.0


class _Shown(Protocol):
    def __enter__(self) -> object: ...
    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None: ...
    def update(self, b: Batch) -> None: ...


def wait_for(client: OpenAI, batch: Batch, interval: float) -> Batch:
    """Poll until the batch is terminal, showing progress on stderr. Ctrl-C stops the waiting, not the batch."""
    shown: _Shown = _Bar() if sys.stderr.isatty() else _Lines()
    try:
        with shown:
            shown.update(batch)
            while batch.status not in TERMINAL:
                time.sleep(interval)
                batch = client.batches.retrieve(batch.id)
                shown.update(batch)
    except KeyboardInterrupt:
        click.echo(f"stopped waiting: {batch.id} goes on on the server (`batchgate batches get {batch.id}`)",
                   err=True)
        raise click.exceptions.Exit(130) from None
    return batch


def describe(b: Batch) -> str:
    c = b.request_counts
    if c is None or not c.total:
        return f"{b.id} {b.status}"
    return f"{b.id} {b.status}: {c.completed + c.failed}/{c.total} done, {c.failed} failed"


class _Lines:
    def __init__(self) -> None:
        self._last: tuple[str, str] | None = None
        self._at = 0.0

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def update(self, b: Batch) -> None:
        line, now = describe(b), time.monotonic()
        status, shown = self._last or ("", "")
        if self._last is None or status != b.status or (line != shown and now - self._at >= QUIET_SECONDS):
            click.echo(line, err=True)
            self._last, self._at = (b.status, line), now


class _Bar:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), console=Console(stderr=True),
        )
        self._task = self._progress.add_task("", total=None, failed=0)

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def update(self, b: Batch) -> None:
        c = b.request_counts
        done, failed, total = (c.completed + c.failed, c.failed, c.total) if c else (0, 0, 0)
        self._progress.update(self._task, description=f"{b.id} {b.status}", completed=done,
                              total=total or None, failed=failed)
