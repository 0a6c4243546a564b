"""Where `batchgate run` writes result lines: checked before anything runs, and each file written whole or not
at all (beside its target, fsynced, renamed into place), so an interrupted write never leaves half a file."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from batchgate.errors import ConfigError

STDIO = "-"
BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Targets:
    """The output and error files; None is stdout."""

    output: Path | None
    errors: Path | None

    def describe(self, path: Path | None) -> str:
        return "stdout" if path is None else str(path)


def check_targets(input_file: Path | None, output: str, errors: str | None) -> Targets:
    """Refuse, before anything runs, destinations the results could not be written to."""
    out = None if output == STDIO else Path(output)
    if errors is None:
        if out is None:
            raise ConfigError("with -o - (results on stdout), give --errors FILE for the failed requests, "
                              "or --errors - to write them to stdout too")
        errors = str(out.with_suffix(".errors.jsonl"))
    err = None if errors == STDIO else Path(errors)
    for flag, path in (("--output", out), ("--errors", err)):
        if path is not None:
            _check(flag, path, input_file)
    if out is not None and err is not None and out.resolve() == err.resolve():
        raise ConfigError(f"--output and --errors are the same file ({out}); give them different names")
    return Targets(out, err)


def _check(flag: str, path: Path, input_file: Path | None) -> None:
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: directory {parent} is not writable")
    if input_file is not None and path.exists() and path.samefile(input_file):
        # Resuming finds a batch by its input's bytes: overwriting them would lose it.
        raise ConfigError(f"{flag} {path} is the input file; write results to another file")


class Sink:
    """The lines for one target. A file gets them through a temp file renamed into place at `commit`; with no
    line at all the target is removed instead, so a file left by an earlier run cannot pass for this one's.
    `pending` holds the temp files not yet committed (removed if the process must exit at once)."""

    def __init__(self, path: Path | None, pending: set[Path]) -> None:
        self._path = path
        self._pending = pending
        self._buf = bytearray()
        self._tmp: Path | None = None
        self._fh: IO[bytes] | None = None
        self.lines = 0

    async def write_line(self, data: bytes) -> None:
        self.lines += 1
        self._buf += data
        self._buf += b"\n"
        if len(self._buf) >= BLOCK:
            await self._drain()

    async def copy(self, blocks: AsyncIterable[bytes]) -> None:
        """Whole blocks of lines (a stored result file)."""
        async for block in blocks:
            self._buf += block
            if len(self._buf) >= BLOCK:
                await self._drain()

    async def _drain(self) -> None:
        if not self._buf:
            return
        block, self._buf = bytes(self._buf), bytearray()
        if self._path is None:
            await asyncio.to_thread(_to_stdout, block)
            return
        if self._fh is None:
            self._tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.part")
            self._pending.add(self._tmp)
            self._fh = self._tmp.open("wb")
        await asyncio.to_thread(self._fh.write, block)

    async def commit(self) -> None:
        await self._drain()
        if self._path is None:
            return
        if self._fh is None or self._tmp is None:
            await asyncio.to_thread(self._path.unlink, True)
            return
        fh, tmp = self._fh, self._tmp
        await asyncio.to_thread(_sync_close, fh)
        self._fh = None
        await asyncio.to_thread(tmp.replace, self._path)
        self._pending.discard(tmp)

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._pending.discard(self._tmp)


async def write_results(targets: Targets, pending: set[Path], output: AsyncIterable[bytes] | None,
                        errors: AsyncIterable[bytes] | None) -> None:
    """A finished batch's output and error files (None: the batch has none) to their targets."""
    for path, blocks in ((targets.output, output), (targets.errors, errors)):
        sink = Sink(path, pending)
        try:
            if blocks is not None:
                await sink.copy(blocks)
            await sink.commit()
        except BaseException:
            sink.abort()
            raise


async def write_recorded(targets: Targets, pending: set[Path],
                         results: AsyncIterable[tuple[bool, bytes]]) -> tuple[int, int]:
    """Results recorded so far (ok, line) of an unfinished batch: succeeded and failed lines to their targets."""
    out, err = Sink(targets.output, pending), Sink(targets.errors, pending)
    try:
        async for ok, data in results:
            await (out if ok else err).write_line(data)
        await out.commit()
        await err.commit()
    except BaseException:
        out.abort()
        err.abort()
        raise
    return out.lines, err.lines


def _to_stdout(block: bytes) -> None:
    sys.stdout.buffer.write(block)
    sys.stdout.buffer.flush()


def _sync_close(fh: IO[bytes]) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()
