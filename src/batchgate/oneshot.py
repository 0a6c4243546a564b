"""`batchgate run`: one batch file through the same services and worker as the server, with progress.

The batch lives in a state directory (oneshot_state.py) until its results are written, so an interrupted run
loses nothing: the same command resumes it, and a second process of that command refuses to run it twice."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from batchgate.domain.batch import Batch
from batchgate.domain.status import BatchStatus
from batchgate.errors import BatchgateError, ConfigError, RunLocked
from batchgate.oneshot_outage import Outage
from batchgate.oneshot_output import Targets, check_targets, write_recorded, write_results
from batchgate.oneshot_progress import progress_view
from batchgate.oneshot_signals import StopSignals
from batchgate.oneshot_state import RunState, open_state
from batchgate.protocol.requests import CreateBatch, CreateFile
from batchgate.runtime import settle_gc
from batchgate.services.auth import ANONYMOUS_PROJECT, Principal
from batchgate.settings import Settings
from batchgate.wiring.parts import Parts, running_parts
from batchgate.wiring.routes import check_routing

WHO = Principal(ANONYMOUS_PROJECT)
POLL_SECONDS = 0.2
EXIT_NOT_COMPLETED = 1  # the batch failed validation, or ended without completing (expired)
EXIT_USAGE = 2  # bad options or paths: nothing ran
EXIT_NONE_SUCCEEDED = 3  # the batch completed, but every line failed (its errors are in ERRORS)
EXIT_UPSTREAM_DOWN = 4  # --fail-fast: every replica of an upstream was down; the recorded results are written
EXIT_LOCKED = 75  # EX_TEMPFAIL: another process runs this batch; try again later


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    over: bool  # the batch needs no more runs: its state can go


def _settings(flags: dict[str, Any]) -> Settings:
    # A one-shot run is private: its own SQLite and directory, never a cluster's database or bucket. Like
    # `vllm run-batch` it has no size limits unless they are set.
    return Settings.one_shot(**{**{k: v for k, v in flags.items() if v is not None}, "database_url": None,
                                "storage_url": None})


async def run_file(source: Path | None, output: str, errors: str | None, endpoint: str | None,
                   data_dir: Path | None, keep_state: bool, flags: dict[str, Any], fail_fast: bool = False) -> int:
    """Run `source` (None: stdin) to the end, or until a signal; the exit code."""
    # Messages are plain text (file names may hold brackets) and long lines stay whole for logs and grep.
    console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    stops = StopSignals(console)
    stops.install()
    try:
        targets = check_targets(source, output, errors)
        settings = _settings(flags)
        check_routing(settings)  # a bad routing file leaves no state directory behind
        state = await open_state(source, endpoint, settings, data_dir, sys.stdin.buffer, stops.pending)
        try:
            settings = settings.model_copy(update={"data_dir": state.path})
            async with running_parts(settings, with_worker=True) as parts:
                settle_gc()  # as serve and worker do once started: a long batch runs with the same collector
                outcome = await _run(parts, state, targets, console, stops, fail_fast)
            if outcome.over and keep_state:
                console.print(f"state kept in {state.path}")
            elif outcome.over:
                state.remove(settings)
            return outcome.code
        finally:
            state.close()
    except (ConfigError, BatchgateError) as e:
        console.print(f"error: {e}")
        return EXIT_USAGE
    except ValidationError as e:
        first = e.errors()[0]
        console.print(f"error: {'.'.join(map(str, first['loc']))}: {first['msg']}")
        return EXIT_USAGE
    except RunLocked as e:
        console.print(f"error: {e}")
        return EXIT_LOCKED
    except OSError as e:  # writing results (disk full, stdout closed): the state stays, a rerun writes them again
        console.print(f"error: {e}")
        return EXIT_NOT_COMPLETED
    finally:
        stops.uninstall()


async def _run(parts: Parts, state: RunState, targets: Targets, console: Console, stops: StopSignals,
               fail_fast: bool = False) -> Outcome:
    page = await parts.batches.list(WHO, None, 1)  # the run's own database: at most this one batch
    if page.items:
        batch = page.items[0]
        c = batch.request_counts
        console.print(f"resuming {batch.id} ({c.completed + c.failed} done)")
        state.drop_spool()
    else:
        try:
            batch = await _create(parts, state)
        except BatchgateError as e:
            console.print(f"error: {e.message}")
            return Outcome(EXIT_USAGE, over=True)
    stops.orderly = True
    assert parts.worker is not None
    parts.worker.notify()
    outage = Outage(parts.router, console)
    with progress_view(console, parts.settings.run_progress_seconds) as view:
        stops.on_exit.append(view.stop)
        while not batch.status.terminal and not stops.requested.is_set():
            await stops.wait(POLL_SECONDS)
            batch = await parts.batches.get(WHO, batch.id)
            view.show(batch, parts.metrics.retry_count())
            if outage.check() and fail_fast:
                break
        stops.on_exit.remove(view.stop)
    if not batch.status.terminal:
        await parts.worker.stop(grace=0)  # requests in flight are dropped; what has finished is flushed first
        batch = await parts.batches.get(WHO, batch.id)
        if not batch.status.terminal and not stops.requested.is_set():
            return await _gave_up(parts, batch, targets, console, stops, outage)
        if not batch.status.terminal:
            return await _interrupted(parts, batch, targets, console, stops)
    return await _finished(parts, batch, targets, console, stops)


async def _create(parts: Parts, state: RunState) -> Batch:
    # A run stopped between storing its input and creating its batch has the file already: never store it twice.
    stored = await parts.files.list(WHO, "batch", False, None, 1)
    f = stored.items[0] if stored.items else await parts.files.create(
        WHO, CreateFile(state.input.name, "batch"), _read(state.input))
    state.drop_spool()
    return await parts.batches.create(WHO, CreateBatch(f.id, state.endpoint, "7d"))


async def _interrupted(parts: Parts, batch: Batch, targets: Targets, console: Console,
                       stops: StopSignals) -> Outcome:
    ok, failed = await write_recorded(targets, stops.pending, parts.batches.recorded_results(WHO, batch.id))
    total = batch.request_counts.total
    if batch.status is BatchStatus.VALIDATING:
        what = f"stopped {batch.id} while validating; no request ran"
    else:
        what = (f"stopped {batch.id}: {ok} succeeded -> {targets.describe(targets.output)}, {failed} failed -> "
                f"{targets.describe(targets.errors)}; {total - ok - failed} of {total} lines did not run")
    console.print(f"{stops.name}: {what}. Run the same command to resume.")
    return Outcome(stops.exit_code, over=False)


async def _gave_up(parts: Parts, batch: Batch, targets: Targets, console: Console, stops: StopSignals,
                   outage: Outage) -> Outcome:
    ok, failed = await write_recorded(targets, stops.pending, parts.batches.recorded_results(WHO, batch.id))
    total = batch.request_counts.total
    console.print(f"--fail-fast: {outage.describe()}; stopped {batch.id}: {ok} succeeded -> "
                  f"{targets.describe(targets.output)}, {failed} failed -> {targets.describe(targets.errors)}; "
                  f"{total - ok - failed} of {total} lines did not run. Run the same command to resume.")
    return Outcome(EXIT_UPSTREAM_DOWN, over=False)


async def _finished(parts: Parts, batch: Batch, targets: Targets, console: Console,
                    stops: StopSignals) -> Outcome:
    if batch.errors:
        for e in batch.errors:
            where = f"line {e.line}: " if e.line else ""
            console.print(f"{e.code} {where}{e.message}")
        return Outcome(EXIT_NOT_COMPLETED, over=True)
    await write_results(targets, stops.pending, await _content(parts, batch.output_file_id),
                        await _content(parts, batch.error_file_id))
    c = batch.request_counts
    errors = f", errors in {targets.describe(targets.errors)}" if batch.error_file_id else ""
    console.print(f"{batch.status.value}: {c.completed} succeeded, {c.failed} failed, "
                  f"{parts.metrics.retry_count()} retries -> {targets.describe(targets.output)}{errors}")
    return Outcome(_exit_code(batch), over=True)


def _exit_code(batch: Batch) -> int:
    """0 when the batch completed with at least one line that succeeded; a script can tell the rest apart."""
    if batch.status is not BatchStatus.COMPLETED:
        return EXIT_NOT_COMPLETED
    return 0 if batch.request_counts.completed else EXIT_NONE_SUCCEEDED


async def _content(parts: Parts, file_id: str | None) -> AsyncIterator[bytes] | None:
    if file_id is None:
        return None
    _, body = await parts.files.content(WHO, file_id)
    return body


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while block := await asyncio.to_thread(fh.read, 1 << 20):
            yield block
