"""Ctrl-C and SIGTERM for `batchgate run`.

The first signal asks for an orderly stop: stop sending, keep what has finished, write it out. A second one,
or the first before the batch exists (nothing to save yet), exits at once: every result recorded so far is
already committed to the run's database, so the same command resumes from it either way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from rich.console import Console

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    def __init__(self, console: Console) -> None:
        self._console = console
        self.signum: int | None = None
        self.requested = asyncio.Event()
        self.orderly = False  # set once the batch exists: from then on there is something to write out
        self.pending: set[Path] = set()  # partly written result files, removed by an immediate exit
        self.on_exit: list[Callable[[], None]] = []  # e.g. give the terminal its cursor back
        self._installed: list[int] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            # An ignored signal stays ignored (a shell runs background jobs with SIGINT ignored), as in Python.
            if signal.getsignal(sig) is not signal.SIG_IGN:
                loop.add_signal_handler(sig, self._received, sig)
                self._installed.append(sig)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as shells report a process a signal ended: 130 SIGINT, 143 SIGTERM."""
        return 128 + (self.signum or 0)

    async def wait(self, seconds: float) -> None:
        """Sleep for `seconds`, or less if a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.requested.wait(), seconds)

    def _received(self, sig: int) -> None:
        first = self.signum is None
        if first:
            self.signum = sig
        if first and self.orderly:
            self.requested.set()
            self._console.print(f"{self.name}: stopping; writing the results recorded so far "
                                "(again to quit at once)")
            return
        if first:
            self._exit_now(f"{self.name}: stopped before sending anything; run the same command to resume.")
        self._exit_now(f"{signal.Signals(sig).name} again: quitting now; the results recorded so far are kept, "
                       "run the same command to resume.")

    def _exit_now(self, message: str) -> NoReturn:
        for undo in self.on_exit:
            with contextlib.suppress(Exception):
                undo()
        for path in self.pending:
            with contextlib.suppress(OSError):
                path.unlink()
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        os._exit(self.exit_code)
