"""`batchgate batches ...` and `batchgate files ...`: a running server's Batch API from the terminal.

They talk HTTP to the server with the official `openai` SDK, exactly as any other client would, so they work
against any batchgate (or OpenAI itself). Tables for people, `--json` for scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import Batch, FileObject

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
# The SDK refuses an empty key; a keyless batchgate on loopback accepts any bearer.
DEFAULT_API_KEY = "local"


def _client_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)
    fn = click.option("--api-key", envvar=["BATCHGATE_API_KEY", "OPENAI_API_KEY"], default=DEFAULT_API_KEY,
                      show_default=False, help="API key. [env BATCHGATE_API_KEY, then OPENAI_API_KEY]")(fn)
    fn = click.option("--base-url", envvar="BATCHGATE_BASE_URL", default=DEFAULT_BASE_URL, show_default=True,
                      help="The server's /v1 URL. [env BATCHGATE_BASE_URL]")(fn)
    return fn


@contextmanager
def _client(base_url: str, api_key: str) -> Iterator[OpenAI]:
    """The SDK client; API errors become one-line CLI errors instead of tracebacks."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key or DEFAULT_API_KEY, max_retries=2)
    try:
        yield client
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        message = body.get("message") or e.message
        raise click.ClickException(f"{e.status_code}: {message}") from None
    except openai.APIConnectionError:
        raise click.ClickException(f"cannot reach {base_url}: is `batchgate serve` running there?") from None
    finally:
        client.close()


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def _table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, name in enumerate(columns):
        # Ids are copied into the next command: never cut them.
        width = max((len(r[i]) for r in rows), default=0) if i == 0 else None
        table.add_column(name, no_wrap=i == 0, min_width=width)
    for r in rows:
        table.add_row(*r)
    Console().print(table)


def _counts(b: Batch) -> str:
    c = b.request_counts
    return f"{c.completed}/{c.failed}/{c.total}" if c is not None else ""


def _batch_rows(batches: list[Batch]) -> list[list[str]]:
    return [[b.id, b.status, b.endpoint, b.model or "", _counts(b), _when(b.created_at)] for b in batches]


def _print_batch(b: Batch, as_json: bool) -> None:
    if as_json:
        _echo_json(b.model_dump(mode="json"))
        return
    fields = b.model_dump(mode="json")
    rows = []
    for name, value in fields.items():
        if value is None or value == {}:
            continue
        shown = _when(value) if name.endswith("_at") and isinstance(value, int) else value
        rows.append([name, shown if isinstance(shown, str) else json.dumps(shown)])
    _table(b.id, ["field", "value"], rows)


@click.group()
def batches() -> None:
    """Batches on a running server: list, get, cancel, download results."""


@batches.command("list")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True, help="Batches per page.")
@click.option("--after", help="Start after this batch id (the cursor of the previous page).")
@click.option("--all", "every", is_flag=True, help="Follow pages to the end.")
@_client_options
def batches_list(limit: int, after: str | None, every: bool, base_url: str, api_key: str, as_json: bool) -> None:
    """List batches, newest first (completed/failed/total in COUNTS)."""
    from openai import omit

    with _client(base_url, api_key) as client:
        page = client.batches.list(limit=limit, after=after or omit)
        found = list(page) if every else list(page.data)
    if as_json:
        _echo_json([b.model_dump(mode="json") for b in found])
    else:
        _table(None, ["id", "status", "endpoint", "model", "counts", "created"], _batch_rows(found))


@batches.command("get")
@click.argument("batch_id")
@_client_options
def batches_get(batch_id: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Show one batch: status, counts, usage, file ids, timestamps."""
    with _client(base_url, api_key) as client:
        b = client.batches.retrieve(batch_id)
    _print_batch(b, as_json)


@batches.command("cancel")
@click.argument("batch_id")
@_client_options
def batches_cancel(batch_id: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Cancel a batch: it goes to `cancelling`, then `cancelled` with the results finished so far."""
    with _client(base_url, api_key) as client:
        b = client.batches.cancel(batch_id)
    if as_json:
        _print_batch(b, True)
    else:
        click.echo(f"{b.id}: {b.status}")


@batches.command("download")
@click.argument("batch_id")
@click.option("-d", "--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Where to write BATCH_ID-output.jsonl and BATCH_ID-errors.jsonl.")
@_client_options
def batches_download(batch_id: str, directory: Path, base_url: str, api_key: str, as_json: bool) -> None:
    """Write a batch's output file and error file (those it has) to a directory."""
    written: dict[str, str] = {}
    with _client(base_url, api_key) as client:
        b = client.batches.retrieve(batch_id)
        wanted = {"output": b.output_file_id, "errors": b.error_file_id}
        if not any(wanted.values()):
            raise click.ClickException(f"batch {b.id} is {b.status} and has no output or error file yet")
        directory.mkdir(parents=True, exist_ok=True)
        for kind, file_id in wanted.items():
            if file_id is None:
                continue
            path = directory / f"{b.id}-{kind}.jsonl"
            with client.files.with_streaming_response.content(file_id) as response, open(path, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
            written[kind] = str(path)
    if as_json:
        _echo_json(written)
    else:
        for written_path in written.values():
            click.echo(written_path)


@click.group()
def files() -> None:
    """Files on a running server: list, upload."""


def _file_rows(found: list[FileObject]) -> list[list[str]]:
    return [[f.id, f.filename, f.purpose, str(f.bytes), _when(f.created_at)] for f in found]


@files.command("list")
@click.option("--purpose", help="Only files with this purpose (batch, batch_output, ...).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Files per page.")
@click.option("--all", "every", is_flag=True, help="Follow pages to the end.")
@_client_options
def files_list(purpose: str | None, limit: int, every: bool, base_url: str, api_key: str, as_json: bool) -> None:
    """List files, newest first."""
    from openai import omit

    with _client(base_url, api_key) as client:
        page = client.files.list(limit=limit, purpose=purpose or omit)
        found = list(page) if every else list(page.data)
    if as_json:
        _echo_json([f.model_dump(mode="json") for f in found])
    else:
        _table(None, ["id", "filename", "purpose", "bytes", "created"], _file_rows(found))


@files.command("upload")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--purpose", default="batch", show_default=True, help="The file's purpose.")
@_client_options
def files_upload(path: Path, purpose: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Upload a file (e.g. a batch's .jsonl input) and print its id."""
    with _client(base_url, api_key) as client, open(path, "rb") as f:
        uploaded = client.files.create(file=(path.name, f), purpose=purpose)  # type: ignore[arg-type]
    if as_json:
        _echo_json(uploaded.model_dump(mode="json"))
    else:
        click.echo(uploaded.id)
