"""`batchgate run`: one batch file through the same services and worker as the server, with a progress bar."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from batchgate.app import Parts, running_parts
from batchgate.errors import BatchgateError, ConfigError
from batchgate.runtime import settle_gc
from batchgate.services.auth import ANONYMOUS_PROJECT, Principal
from batchgate.settings import Settings

WHO = Principal(ANONYMOUS_PROJECT)


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while block := await asyncio.to_thread(fh.read, 1 << 20):
            yield block


def _first_url(path: Path) -> str | None:
    with path.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    url = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf")).get("url")
                except (orjson.JSONDecodeError, AttributeError):
                    return None
                return url if isinstance(url, str) else None
    return None


async def run_file(input_file: Path, output: Path, errors: Path | None, endpoint: str | None,
                   flags: dict[str, Any]) -> int:
    console = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="batchgate-run-") as tmp:
        # A one-shot run is private: its own SQLite and directory, never a cluster's database or bucket.
        settings = Settings.one_shot(**{"data_dir": Path(tmp), **{k: v for k, v in flags.items() if v is not None},
                                        "database_url": None, "storage_url": None})
        try:
            async with running_parts(settings, with_worker=True) as parts:
                settle_gc()  # as serve and worker do once started: a long batch runs with the same collector
                return await _run(parts, console, input_file, output,
                                  errors or output.with_suffix(".errors.jsonl"), endpoint)
        except (ConfigError, BatchgateError) as e:
            console.print(f"[red]error:[/red] {e}")
            return 2


async def _run(parts: Parts, console: Console, input_file: Path, output: Path, errors: Path,
               endpoint: str | None) -> int:
    endpoint = endpoint or _first_url(input_file) or "/v1/chat/completions"
    f = await parts.files.create(WHO, input_file.name, "batch", None, _read(input_file))
    batch = await parts.batches.create(WHO, {"input_file_id": f.id, "endpoint": endpoint,
                                             "completion_window": "7d"})
    assert parts.worker is not None
    parts.worker.notify()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task("validating", total=None)
        while not batch.status.terminal:
            await asyncio.sleep(0.2)
            batch = await parts.batches.get(WHO, batch.id)
            c = batch.request_counts
            progress.update(bar, description=batch.status.value, total=c.total or None,
                            completed=c.completed + c.failed)
    if batch.errors:
        for e in batch.errors:
            where = f"line {e.line}: " if e.line else ""
            console.print(f"[red]{e.code}[/red] {where}{e.message}")
        return 1
    await _save(parts, batch.output_file_id, output)
    await _save(parts, batch.error_file_id, errors)
    c = batch.request_counts
    console.print(f"{batch.status.value}: {c.completed} succeeded, {c.failed} failed -> {output}"
                  + (f", errors in {errors}" if batch.error_file_id else ""))
    return 0


async def _save(parts: Parts, file_id: str | None, path: Path) -> None:
    if file_id is None:
        await asyncio.to_thread(path.unlink, True)
        return
    _, body = await parts.files.content(WHO, file_id)
    with path.open("wb") as fh:
        async for block in body:
            await asyncio.to_thread(fh.write, block)
